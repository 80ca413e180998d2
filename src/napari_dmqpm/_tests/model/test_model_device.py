import pytest
import torch

from napari_dmqpm.model import autocast_dtype, resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    assert resolve_device("auto").type in ({expected} if expected else {"mps", "cpu"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_unavailable_cuda_is_a_clear_error(name):
    with pytest.raises(RuntimeError, match=f"device='{name}' was requested but no CUDA"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_auto_falls_back_without_cuda(monkeypatch):
    monkeypatch.setattr("napari_dmqpm.model.device._mps_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr("napari_dmqpm.model.device._mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")


def test_unavailable_mps_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("napari_dmqpm.model.device._mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS is not available"):
        resolve_device("mps")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu", 3])
def test_unknown_names_are_value_errors(name):
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device(name)


def test_autocast_dtype():
    assert autocast_dtype("cpu") is None
    assert autocast_dtype(torch.device("mps")) is None


def test_autocast_dtype_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device", lambda device: _Null())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert autocast_dtype("cuda") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert autocast_dtype("cuda:0") is torch.float16


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
