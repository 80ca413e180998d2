"""The detection rules of docs/formats.md: stored shape, axes and dtype -> kind and layout.

Pure functions of the header (no pixels), so that ``inspect_file`` is cheap and the
reader applies exactly the plan that ``dmqpm info`` printed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_dmqpm.io.acquisition import FILE_KINDS, FormatError

#: Channels per frame of each kind: 5 = I0, I45, I90, I135, phase; 4 = angles; 1 = one plane.
CHANNELS: dict[str, int] = {
    "ssqpm-stack": 5,
    "angles-stack": 4,
    "raw-mosaic": 1,
    "phase-map": 1,
}
_BY_CHANNELS = {5: "ssqpm-stack", 4: "angles-stack"}
_OVERRIDE_HINT = "a heuristic; override with kind= or --kind"


@dataclass(frozen=True)
class Layout:
    """How the stored array maps onto ``(T, C, M, N)``.

    Attributes
    ----------
    kind : str
        One of ``FILE_KINDS``.
    reason : str
        The rule that fired, in words.
    n_frames, n_channels : int
        ``T`` and ``C`` (5, 4 or 1) of the arranged array.
    time_axis, channel_axis : int or None
        Positions of the time and channel axes in the stored array.
    split : bool
        The single stack axis (``time_axis``) interleaves ``T * C`` planes, channels
        fastest (ImageJ's order), and is split into ``(T, C)``.
    is_timelapse : bool
        The file has a time axis.
    """

    kind: str
    reason: str
    n_frames: int
    n_channels: int
    time_axis: int | None
    channel_axis: int | None
    split: bool
    is_timelapse: bool


def check_dtype(dtype: np.dtype, where: str) -> None:
    """Raise FormatError for dtypes no format allows (complex, bool, non-numeric)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise FormatError(
            f"{where}: complex data (dtype={dtype}) is not supported; save the phase in "
            "radians as a real image (e.g. np.angle of the field, then unwrap)"
        )
    if dtype == np.bool_ or not (
        np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    ):
        raise FormatError(f"{where}: unsupported dtype={dtype}; expected integers or floats")


def plan_layout(
    shape: tuple[int, ...],
    axes: str,
    dtype: np.dtype,
    *,
    declared: str = "",
    kind: str | None = None,
    where: str = "data",
) -> Layout:
    """Apply the detection rules, in order, to one stored array.

    Parameters
    ----------
    shape : tuple of int
        Stored shape, the last two axes rows and columns.
    axes : str
        One letter per axis (tifffile's convention: T time, C channel, Z, I, Q ...).
    dtype : numpy dtype
        Stored dtype.
    declared : str, optional
        Name of the metadata that declared ``axes`` ("ImageJ", "OME", "tifffile"), or ""
        when the axes are only tifffile's guess.
    kind : str, optional
        Explicit kind: skips detection, only checks that the shape allows it.
    where : str, optional
        The file name, for messages.

    Returns
    -------
    Layout
    """
    if len(shape) < 2 or len(axes) != len(shape):
        raise FormatError(f"{where}: expected an image (at least 2 axes); got shape={shape}")
    if axes[-1] == "S":
        if shape[-1] != 1:
            raise FormatError(
                f"{where}: colour image ({shape[-1]} samples per pixel, shape={shape}); "
                "expected single-channel planes"
            )
        shape, axes = shape[:-1], axes[:-1]
    check_dtype(dtype, where)
    if min(shape[-2:]) < 1:
        raise FormatError(f"{where}: empty image, shape={shape}")
    if kind is not None and kind not in FILE_KINDS:
        raise ValueError(f"kind must be None or one of {FILE_KINDS}; got kind={kind!r}")
    leads = [(i, axes[i], shape[i]) for i in range(len(shape) - 2) if shape[i] > 1]
    is_float = np.issubdtype(np.dtype(dtype), np.floating)
    channel = [lead for lead in leads if lead[1] == "C"] if declared else []
    if channel:
        return _plan_declared_channels(leads, channel[0], kind, declared, where)
    time = [lead for lead in leads if lead[1] == "T"] if declared else []
    if time and len(leads) == 1 and kind is None:
        n_frames = time[0][2]
        auto = "phase-map" if is_float else "raw-mosaic"
        reason = (
            f"{declared} metadata declares a time axis T={n_frames} and no channel axis; "
            f"{'float' if is_float else 'integer'} planes -> {auto} time-lapse"
        )
        return Layout(auto, reason, n_frames, 1, time[0][0], None, False, True)
    if kind is not None:
        return _plan_override(leads, kind, shape, where)
    return _plan_by_shape(leads, is_float, shape, where)


def _plan_declared_channels(
    leads: list[tuple[int, str, int]],
    channel: tuple[int, str, int],
    kind: str | None,
    declared: str,
    where: str,
) -> Layout:
    c_axis, _, n_channels = channel
    others = [lead for lead in leads if lead[0] != c_axis]
    if len(others) > 1:
        found = ", ".join(f"{letter}={size}" for _, letter, size in others)
        raise FormatError(f"{where}: more than one axis besides C, Y, X ({found}); expected T only")
    if n_channels not in _BY_CHANNELS:
        raise FormatError(
            f"{where}: {declared} metadata declares C={n_channels} channels; expected 5 "
            "(I0, I45, I90, I135, phase) or 4 (I0, I45, I90, I135)"
        )
    auto = _BY_CHANNELS[n_channels]
    if kind is not None and kind != auto:
        raise FormatError(
            f"{where}: kind={kind!r} does not fit the {n_channels} channels that "
            f"{declared} metadata declares (that is {auto!r})"
        )
    t_axis, n_frames = (others[0][0], others[0][2]) if others else (None, 1)
    reason = (
        f"kind={kind!r} given; {declared} metadata agrees (C={n_channels})"
        if kind is not None
        else f"{declared} metadata declares C={n_channels} channels -> {auto}"
    )
    return Layout(auto, reason, n_frames, n_channels, t_axis, c_axis, False, t_axis is not None)


def _plan_by_shape(
    leads: list[tuple[int, str, int]], is_float: bool, shape: tuple[int, ...], where: str
) -> Layout:
    word = "float" if is_float else "integer"
    single = "phase-map" if is_float else "raw-mosaic"
    if not leads:
        return Layout(single, f"2-D {word} image -> {single}", 1, 1, None, None, False, False)
    if len(leads) == 1:
        axis, _, size = leads[0]
        if size in _BY_CHANNELS:
            auto = _BY_CHANNELS[size]
            reason = f"{size} planes of shape {shape[-2:]} -> {auto} (by shape; {_OVERRIDE_HINT})"
            return Layout(auto, reason, 1, size, None, axis, False, False)
        reason = f"{size} {word} planes -> {single} time-lapse (by shape; {_OVERRIDE_HINT})"
        return Layout(single, reason, size, 1, axis, None, False, True)
    if len(leads) == 2 and leads[1][2] in _BY_CHANNELS:
        (t_axis, _, n_frames), (c_axis, _, size) = leads
        auto = _BY_CHANNELS[size]
        reason = f"shape (T={n_frames}, C={size}, M, N) -> {auto} time-lapse (by shape)"
        return Layout(auto, reason, n_frames, size, t_axis, c_axis, False, True)
    raise FormatError(
        f"{where}: cannot tell what shape={shape} holds; expected (M, N), (T, M, N), "
        "(4 or 5, M, N) or (T, 4 or 5, M, N)"
    )


def _plan_override(
    leads: list[tuple[int, str, int]], kind: str, shape: tuple[int, ...], where: str
) -> Layout:
    n_channels = CHANNELS[kind]
    reason = f"kind={kind!r} given (detection skipped)"
    if n_channels == 1:
        if not leads:
            return Layout(kind, reason, 1, 1, None, None, False, False)
        if len(leads) == 1:
            return Layout(kind, reason, leads[0][2], 1, leads[0][0], None, False, True)
        raise FormatError(f"{where}: kind={kind!r} needs (M, N) or (T, M, N); got shape={shape}")
    if len(leads) == 1 and leads[0][2] == n_channels:
        return Layout(kind, reason, 1, n_channels, None, leads[0][0], False, False)
    if len(leads) == 1 and leads[0][2] % n_channels == 0:
        n_frames = leads[0][2] // n_channels
        reason += f"; {leads[0][2]} planes split into T={n_frames} x C={n_channels}"
        return Layout(kind, reason, n_frames, n_channels, leads[0][0], None, True, True)
    if len(leads) == 2 and leads[1][2] == n_channels:
        (t_axis, _, n_frames), (c_axis, _, _) = leads
        return Layout(kind, reason, n_frames, n_channels, t_axis, c_axis, False, True)
    raise FormatError(
        f"{where}: kind={kind!r} needs {n_channels} channels per frame, (C, M, N) or "
        f"(T, C, M, N) with C={n_channels}; got shape={shape}"
    )


def arrange(data: np.ndarray, layout: Layout, axes: str) -> np.ndarray:
    """Reshape a stored array to ``(T, C, M, N)`` following ``layout`` (a view when possible).

    ``axes`` are the stored axes; a trailing samples axis ``S`` (of length 1) is dropped.
    """
    if axes.endswith("S") and data.ndim == len(axes):
        data = data[..., 0]
    keep = [a for a in (layout.time_axis, layout.channel_axis) if a is not None]
    squeezed = data.reshape(
        [s for i, s in enumerate(data.shape[:-2]) if i in keep]
        + [
            data.shape[-2],
            data.shape[-1],
        ]
    )
    kept = sorted(keep)
    order = [kept.index(a) for a in (layout.time_axis, layout.channel_axis) if a is not None]
    squeezed = np.transpose(squeezed, (*order, len(kept), len(kept) + 1))
    n_rows, n_cols = squeezed.shape[-2:]
    return squeezed.reshape(layout.n_frames, layout.n_channels, n_rows, n_cols)
