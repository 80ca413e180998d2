import numpy as np
import pytest
from skimage.measure import label as connected_components

from napari_dmqpm.simulation import SimulationConfig, make_phantom

SMALL = (96, 96)


def _touching_pairs(labels):
    pairs = set()
    for a, b in ((labels[:-1], labels[1:]), (labels[:, :-1], labels[:, 1:])):
        differ = (a != b) & (a > 0) & (b > 0)
        pairs |= {
            tuple(sorted(p)) for p in zip(a[differ].tolist(), b[differ].tolist(), strict=True)
        }
    return pairs


@pytest.mark.parametrize("density", ["sparse", "dense", "confluent"])
def test_labels_are_contiguous_single_pieces(density):
    labels = make_phantom(SimulationConfig(shape=SMALL, density=density), rng=3).labels
    assert labels.dtype == np.int32
    ids = np.unique(labels[labels > 0])
    assert ids.size > 0
    np.testing.assert_array_equal(ids, np.arange(1, ids.size + 1))
    for cell_id in ids:
        assert connected_components(labels == cell_id, connectivity=1).max() == 1


def test_confluent_cells_touch_along_shared_borders():
    labels = make_phantom(SimulationConfig(shape=(128, 128), density="confluent"), rng=1).labels
    pairs = _touching_pairs(labels)
    touching = {cell for pair in pairs for cell in pair}
    assert len(pairs) >= labels.max()  # a sheet: about three neighbours per cell
    assert len(touching) >= 0.8 * labels.max()
    assert (labels > 0).mean() > 0.75


def test_cover_fraction_increases_with_density():
    covers = []
    for density in ("sparse", "medium", "dense", "confluent"):
        config = SimulationConfig(shape=(128, 128), density=density)
        covers.append(np.mean([(make_phantom(config, rng=s).labels > 0).mean() for s in (0, 1)]))
    assert covers == sorted(covers)
    assert covers[0] < 0.12 and covers[-1] > 0.75


def test_debris_is_not_labelled():
    base = SimulationConfig(shape=SMALL, density="medium", debris_count=0)
    clean = make_phantom(base, rng=7)
    dirty = make_phantom(base.replace(debris_count=40), rng=7)
    np.testing.assert_array_equal(clean.labels, dirty.labels)
    outside = dirty.labels == 0
    assert np.abs(dirty.debris_um[outside]).max() > 0.01  # debris does lie in the background
    assert np.abs(clean.debris_um).max() == 0


def test_optical_path_is_exactly_on_the_labels_without_blur():
    config = SimulationConfig(shape=SMALL, density="dense", psf_sigma_um=0.0, debris_count=0)
    phantom = make_phantom(config, rng=2)
    np.testing.assert_array_equal(phantom.opd_um > 0, phantom.labels > 0)


def test_mitotic_cells_are_round_and_tall():
    flat = SimulationConfig(shape=SMALL, density="sparse", mitotic_fraction=0.0, psf_sigma_um=0.0)
    flat_cells = make_phantom(flat, rng=5).cells
    round_cells = make_phantom(flat.replace(mitotic_fraction=1.0), rng=5).cells
    assert all(cell.mitotic and cell.aspect == 1.0 for cell in round_cells)
    assert np.median([c.height_um for c in round_cells]) > np.median(
        [c.height_um for c in flat_cells]
    )
    assert np.median([c.radius_um for c in round_cells]) < np.median(
        [c.radius_um for c in flat_cells]
    )


SPREAD = SimulationConfig(shape=(160, 160), density="medium", spread_fraction=1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_spread_cells_label_their_thin_lamellipodium(seed):
    from napari_dmqpm.simulation import simulate_field

    spread = simulate_field(SPREAD, rng=seed)
    body_only = simulate_field(SPREAD.replace(lamellipodium_width_um=0.0), rng=seed)
    bodies = body_only.labels > 0
    # the same cells with the same ids, each grown by its lamellipodium
    np.testing.assert_array_equal(spread.labels[bodies], body_only.labels[bodies])
    footprint = spread.labels > 0
    assert spread.labels.dtype == np.int32
    assert footprint.sum() > 1.2 * bodies.sum()
    periphery = spread.true_phase[footprint & ~bodies]
    assert 0.05 < np.median(periphery) < 0.3  # rad: thin, low optical path
    assert np.mean((periphery > 0.02) & (periphery < 0.35)) > 0.9
    low = (spread.true_phase[footprint] >= 0.05) & (spread.true_phase[footprint] <= 0.3)
    assert low.mean() > 0.15  # labelled pixels in the lamellipodium range
    peaks = [spread.true_phase[spread.labels == i].max() for i in range(1, spread.labels.max() + 1)]
    assert 1.0 < np.median(peaks) < 4.0  # rad: the cell body


def test_spread_cells_are_one_connected_label_with_their_organelles():
    bright = SPREAD.replace(organelle_count=20.0, organelle_contrast=3.0)
    with_organelles = make_phantom(bright, rng=4)
    without = make_phantom(bright.replace(organelle_contrast=0.0), rng=4)
    labels = with_organelles.labels
    np.testing.assert_array_equal(labels, without.labels)  # organelles never get labels
    flat = [cell for cell in with_organelles.cells if not cell.mitotic]
    assert all(cell.spread and len(cell.organelles) > 0 for cell in flat)
    for cell_id in range(1, labels.max() + 1):
        assert connected_components(labels == cell_id, connectivity=1).max() == 1
    extra = with_organelles.opd_um - without.opd_um
    assert extra.max() > 0.5 * SPREAD.cell_thickness_um * SPREAD.delta_n  # bright spots
    assert np.abs(extra[labels > 0]).sum() > 0.999 * np.abs(extra).sum()  # inside their cells


def test_spread_fraction_sets_the_share_of_spread_cells():
    half = make_phantom(SimulationConfig(shape=(384, 384), spread_fraction=0.5), rng=0).cells
    flat = [cell for cell in half if not cell.mitotic]
    assert 0.3 < np.mean([cell.spread for cell in flat]) < 0.7
    spread = [cell for cell in flat if cell.spread]
    assert all(cell.lamellipodium_um > 0 and cell.organelles.shape[1] == 3 for cell in spread)
    default = make_phantom(SimulationConfig(shape=(128, 128)), rng=0).cells
    assert not any(cell.spread for cell in default)
