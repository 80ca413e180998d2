"""Copy as code: the ``dmqpm segment`` command and the Python call a widget run amounts to.

String building (no napari, no Qt), so it is tested directly; the only I/O is a look at the
header of the layers' file (is it there, what pixel size and kind it states), so that the
command repeats what the file does not say. The command reproduces the run: ``dmqpm segment``
on the file gives the labels of the widget pixel for pixel (the model, device, diameter, TTA,
thresholds, frames, phase unit, wavelength and pixel size are all in it). The Python snippet
is meant for napari's console (where ``viewer`` exists) or a script: it reads the file the
layers came from, or takes the layers' arrays when they came from no file.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from napari_dmqpm.inference.config import InferenceConfig, PostprocessConfig

from ._inputs import PhaseUnit

__all__ = ["SegmentCall", "frames_text", "python_snippet", "shell_command"]

#: Shown in the command in place of a file when the layers came from no file.
PLACEHOLDER_FILE = "INPUT.tif"


@dataclass(frozen=True, kw_only=True)
class SegmentCall:
    """Everything a segmentation run of the widget used, as plain values.

    Parameters
    ----------
    source : str or None
        The file the layers were read from, or None (sample data, arrays).
    phase_layer : str
        Name of the phase layer.
    angles_layer : str or None
        Name of the angles layer, if one was used.
    pixel_size_um : float or None
        Pixel size in µm of the layers (after any demosaicing) used for the measurements.
    model : str
        Model name (or checkpoint folder).
    config : InferenceConfig
    postprocess : PostprocessConfig
    frames : sequence of int or None
        Frames segmented (None: all).
    phase_unit : PhaseUnit
        How the phase layer's values were read (unit, wavelength).
    file_wavelength_um : float or None
        The wavelength the layer's file states (the command repeats a different one).
    """

    source: str | None
    phase_layer: str
    angles_layer: str | None
    pixel_size_um: float | None
    model: str
    config: InferenceConfig
    postprocess: PostprocessConfig
    frames: Sequence[int] | None = None
    phase_unit: PhaseUnit = field(default_factory=PhaseUnit)
    file_wavelength_um: float | None = None

    @property
    def reader_options(self) -> dict:
        """The reader's ``phase_unit``, ``wavelength_um``, ``alpha_um3_per_pg`` to repeat.

        Those that are not the defaults; the wavelength where it is not the file's own.
        """
        unit, options = self.phase_unit, {}
        if unit.unit != "rad":
            options["phase_unit"] = unit.unit
        wavelength = unit.wavelength_um
        if wavelength is not None and (unit.unit != "rad" or wavelength != self.file_wavelength_um):
            options["wavelength_um"] = wavelength
        if unit.alpha_um3_per_pg != PhaseUnit().alpha_um3_per_pg:
            options["alpha_um3_per_pg"] = unit.alpha_um3_per_pg
        return options

    @property
    def has_file(self) -> bool:
        """True when ``source`` is an existing file."""
        return bool(self.source) and Path(self.source).is_file()

    def file_facts(self) -> tuple[str | None, float | None, int]:
        """What the layers' file says: its kind, pixel size, and pixels per layer pixel.

        The pixel size is the one the reader gives (after demosaicing); a raw mosaic, which
        napari's reader splits by superpixel demosaicing, has 2 file pixels per layer pixel
        along each axis, other files 1. ``(None, None, 1)`` when there is no file or its
        header cannot be read.
        """
        if not self.has_file:
            return None, None, 1
        from napari_dmqpm.io import inspect_file

        try:
            info = inspect_file(self.source)
        except (OSError, ValueError):
            return None, None, 1
        factor = 2 if info.kind == "raw-mosaic" else 1
        size = None if info.pixel_size_um is None else info.pixel_size_um * factor
        return info.kind, size, factor

    def file_pixel_size_um(self) -> float | None:
        """The pixel size the command must give (``--pixel-size-um``, in the file's pixels).

        None where the file states the one the run used (or the run used none).
        """
        if self.pixel_size_um is None:
            return None
        _, stated, factor = self.file_facts()
        if stated is not None and math.isclose(stated, self.pixel_size_um, rel_tol=1e-6):
            return None
        return self.pixel_size_um / factor


def _changed(config, keep: Sequence[str] = ()) -> dict:
    """The fields of a dataclass that differ from its defaults (plus ``keep``)."""
    default = type(config)()
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name in keep or getattr(config, f.name) != getattr(default, f.name)
    }


def frames_text(frames: Sequence[int]) -> str:
    """``--frames`` of ``dmqpm segment``: the indices, runs of three or more as ranges.

    Examples
    --------
    >>> frames_text([0, 2, 5, 6, 7]), frames_text([3]), frames_text([4, 5, 0])
    ('0,2,5-7', '3', '4,5,0')
    """
    parts: list[list[int]] = []
    for frame in (int(t) for t in frames):
        if parts and frame == parts[-1][-1] + 1:
            parts[-1].append(frame)
        else:
            parts.append([frame])
    words = []
    for run in parts:
        words += [f"{run[0]}-{run[-1]}"] if len(run) >= 3 else [str(t) for t in run]
    return ",".join(words)


def _number(value: float) -> str:
    return f"{value:.10g}"


def _call(function: str, arguments: dict) -> str:
    inner = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
    return f"{function}({inner})"


def shell_command(call: SegmentCall, *, out: str = "segmented") -> str:
    """The ``dmqpm segment`` command line of a run.

    Parameters
    ----------
    call : SegmentCall
    out : str, optional
        Output folder in the command.

    Returns
    -------
    str
        One line, shell-quoted; with a comment line first when the layers came from no file.
        The thresholds are always given (the widget's fields; the model's other
        post-processing values are the command's too); the frames when not all; the phase
        unit when not radians, or when the file, a phase map, states none; the wavelength
        and the pixel size (in the file's pixels) where the file states others or none.

    Examples
    --------
    >>> call = SegmentCall(source=None, phase_layer="a phase", angles_layer=None,
    ...     pixel_size_um=None, model="phase-only", config=InferenceConfig(tta=True),
    ...     postprocess=PostprocessConfig(seed_threshold=0.7))
    >>> print(shell_command(call))
    # the layers came from no file: save them first (File > Save Selected Layers)
    dmqpm segment INPUT.tif --out segmented --model phase-only --device auto --tta \
--foreground-threshold 0.5 --seed-threshold 0.7 --min-cell-area 30
    """
    path = call.source if call.has_file else PLACEHOLDER_FILE
    words = ["dmqpm", "segment", path, "--out", out, "--model", call.model]
    words += ["--device", call.config.device]
    if isinstance(call.config.diameter_px, (int, float)):  # "auto" is the command's default
        words += ["--diameter", f"{call.config.diameter_px:g}"]
    if call.config.tta:
        words.append("--tta")
    options = call.reader_options
    if "phase_unit" not in options and call.file_facts()[0] == "phase-map":
        options = {"phase_unit": "rad", **options}  # the file states none: say it
    flags = {"phase_unit": "--phase-unit", "wavelength_um": "--wavelength-um"}
    flags["alpha_um3_per_pg"] = "--alpha"
    for key, value in options.items():
        words += [flags[key], value if isinstance(value, str) else f"{value:g}"]
    post = call.postprocess
    words += ["--foreground-threshold", _number(post.foreground_threshold)]
    words += ["--seed-threshold", _number(post.seed_threshold)]
    words += ["--min-cell-area", str(int(post.min_cell_area_px))]
    if call.frames is not None:
        words += ["--frames", frames_text(call.frames)]
    pixel_size = call.file_pixel_size_um()
    if pixel_size is not None:
        words += ["--pixel-size-um", _number(pixel_size)]
    line = shlex.join(words)
    if call.has_file:
        return line
    return f"# the layers came from no file: save them first (File > Save Selected Layers)\n{line}"


def python_snippet(call: SegmentCall) -> str:
    """The Python code of a run: read the input, segment, collect labels and the table.

    Parameters
    ----------
    call : SegmentCall

    Returns
    -------
    str
        Code that runs as is in napari's console (``viewer`` is defined there) or, for a
        file, in any script.
    """
    lines = [
        "from napari_dmqpm.inference import (",
        "    InferenceConfig, PostprocessConfig, concat_tables, segment_acquisition,",
        ")",
    ]
    reader = dict(call.reader_options)
    if call.has_file and call.file_pixel_size_um() is not None:
        reader["pixel_size_um"] = call.file_pixel_size_um()
    options = "".join(f", {key}={value!r}" for key, value in reader.items())
    if call.has_file:
        lines += [
            "from napari_dmqpm.io import read_acquisition",
            "",
            f"acquisition = read_acquisition({call.source!r}{options})",
        ]
    else:
        arrays = {"phase": f"viewer.layers[{call.phase_layer!r}].data"}
        if call.angles_layer:
            arrays["angles"] = f"viewer.layers[{call.angles_layer!r}].data"
            arrays["angle_axis"] = "0"
        arrays["pixel_size_um"] = repr(call.pixel_size_um)
        reader = {"wavelength_um": call.file_wavelength_um, **call.reader_options}
        arrays.update({key: repr(value) for key, value in reader.items() if value is not None})
        inner = ",\n    ".join(f"{key}={value}" for key, value in arrays.items())
        lines += [
            "from napari_dmqpm.io import acquisition_from_arrays",
            "",
            f"acquisition = acquisition_from_arrays(\n    {inner},\n)",
        ]
    frames = None if call.frames is None else list(call.frames)
    lines += [
        f"config = {_call('InferenceConfig', _changed(call.config, keep=('device', 'tta')))}",
        f"postprocess = {_call('PostprocessConfig', _changed(call.postprocess))}",
        "results = list(segment_acquisition(",
        f"    acquisition, {call.model!r}, config=config, postprocess=postprocess, "
        f"frames={frames!r},",
        "))",
        "labels = [result.labels for result in results]  # (M, N) uint32 per frame",
        "table = concat_tables([result.table for result in results])  # one row per cell",
    ]
    return "\n".join(lines) + "\n"
