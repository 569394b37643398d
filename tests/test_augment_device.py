"""On-device augmentation: the views are bit-identical to the recorded ones, and one view makes
no host reads of device data and a single host -> device copy of its parameters.

The reference below was computed on the CPU before the parameters were packed into one copy per
view and the jitter's index sets became masks (commit before "augment: one packed parameter
copy per view"); the recorded runs in results/ and checkpoints/ depend on these exact views.
``python tests/test_augment_device.py`` prints the summaries of the current code.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from sslbook import augment as A

# sha256 (16 hex digits) of the views' bytes and the sum of each view, per case; recorded with
# torch 2.14.1 on an AVX512 CPU. The hashes are compared where torch and the CPU kernels are
# the same (float sums may differ in the last bits between CPU instruction sets); the sums,
# to 1e-4, everywhere.
RECORDED = {"torch": "2.14.1+cu130", "cpu": "AVX512"}
EXPECTED: dict[str, tuple] = {}

EXPECTED.update({
    "simclr-1x28/seed0":
        ("6eccf90274f47f5b", [4697.136152, 4559.037891, 5399.657281, 5137.57774]),
    "simclr-1x28/seed1":
        ("9c5c513f8c825476", [4335.60775, 4701.238389, 4946.161165, 4597.228172]),
    "simclr-3x32/seed0":
        ("13a3ccba26839413", [18165.138859, 18604.757899, 16546.220444, 16529.597325]),
    "simclr-3x32/seed1":
        ("36605421e566f537", [16870.351764, 18462.562467, 18898.579106, 17201.758219]),
    "simclr-3x96/seed0":
        ("a177b18a92b28ef6", [158395.716943, 134007.525048, 164443.180165, 136108.739319]),
    "simclr-3x96/seed1":
        ("5ce1ac85f497c8a1", [135341.572525, 146500.255681, 126732.99057, 162882.006732]),
    "moco_v2-1x28/seed0":
        ("6eccf90274f47f5b", [4697.136152, 4559.037891, 5399.657281, 5137.57774]),
    "moco_v2-1x28/seed1":
        ("9c5c513f8c825476", [4335.60775, 4701.238389, 4946.161165, 4597.228172]),
    "moco_v2-3x32/seed0":
        ("ae291d83037a5a3c", [18164.389168, 18665.764685, 16543.058636, 16470.104754]),
    "moco_v2-3x32/seed1":
        ("4af4e8d3ddd1c35d", [16896.143037, 18471.464039, 18884.292472, 17194.880594]),
    "moco_v2-3x96/seed0":
        ("33f2d84af41d18d7", [165084.386571, 150603.832849, 166585.77438, 151359.337135]),
    "moco_v2-3x96/seed1":
        ("18794b43e6690b00", [151919.768696, 157073.568367, 146197.34869, 166107.680212]),
    "byol-1x28/seed0":
        ("79d71fd5aa77dffe", [4697.136152, 4531.914393, 5252.678501, 3764.795989]),
    "byol-1x28/seed1":
        ("520e11d6f51ffc9c", [4335.60775, 4569.299176, 4458.293391, 4132.669731]),
    "byol-3x32/seed0":
        ("53f7c34c0d8594c4", [18171.451496, 17291.957913, 16757.079676, 18277.49303]),
    "byol-3x32/seed1":
        ("a0e36752c4f3a60e", [16883.431942, 17311.738324, 17205.928657, 18383.193923]),
    "byol-3x96/seed0":
        ("4e7ad49586a42c68", [165041.590874, 141848.81394, 155238.662102, 155311.800944]),
    "byol-3x96/seed1":
        ("00c844a8dce30b2f", [152042.976939, 149620.018302, 161751.311957, 161500.28939]),
    "swav-1x28/seed0":
        ("9bb1e6c4ac8dcbbe", [4718.836812, 4566.919044, 972.059424, 940.319752, 4017.511266, 4909.4345, 880.308887, 948.254605]),  # noqa: E501
    "swav-1x28/seed1":
        ("8407a6581769060c", [4325.942693, 4698.174425, 928.143116, 884.388871, 4905.255157, 4844.819173, 840.561567, 890.732863]),  # noqa: E501
    "swav-3x32/seed0":
        ("245dbd58fb1a49fb", [18186.11983, 18639.46147, 3162.826345, 3152.734958, 18183.501089, 19460.034162, 3363.195326, 3582.003749]),  # noqa: E501
    "swav-3x32/seed1":
        ("92d9beb5b222b42e", [16904.697998, 18533.182467, 3617.302542, 3321.117722, 20078.810573, 17416.664552, 3196.551081, 3573.025973]),  # noqa: E501
    "swav-3x96/seed0":
        ("283769a780500429", [158479.780326, 133328.116304, 30022.204791, 24967.454516, 174385.645693, 145877.149899, 25294.096622, 29375.647652]),  # noqa: E501
    "swav-3x96/seed1":
        ("0f0c729cff9236eb", [135441.940727, 146693.688037, 23148.36957, 29750.419809, 146213.622825, 138729.471496, 36160.395465, 28908.625605]),  # noqa: E501
    "crop_only-1x28/seed0":
        ("83b90dae73d664c7", [4715.192342, 4744.392295, 4734.274443, 4716.88854]),
    "crop_only-1x28/seed1":
        ("23483146ca0e12db", [4721.640932, 4744.703527, 4755.267531, 4742.403783]),
    "crop_only-3x32/seed0":
        ("7ee642fd5d77634f", [18217.613204, 18291.380861, 18340.89529, 18163.331636]),
    "crop_only-3x32/seed1":
        ("03e5cee79ad8d297", [18332.499176, 18458.909966, 18543.078587, 18404.964433]),
    "crop_only-3x96/seed0":
        ("096a639c6ca93fde", [165775.288585, 165917.190051, 166037.691019, 165890.878653]),
    "crop_only-3x96/seed1":
        ("ea8f21b0c1d8751d", [165642.366082, 165393.203778, 165647.163001, 165618.285158]),
    "crop_jitter-1x28/seed0":
        ("6eccf90274f47f5b", [4697.136152, 4559.037891, 5399.657281, 5137.57774]),
    "crop_jitter-1x28/seed1":
        ("9c5c513f8c825476", [4335.60775, 4701.238389, 4946.161165, 4597.228172]),
    "crop_jitter-3x32/seed0":
        ("13a3ccba26839413", [18165.138859, 18604.757899, 16546.220444, 16529.597325]),
    "crop_jitter-3x32/seed1":
        ("36605421e566f537", [16870.351764, 18462.562467, 18898.579106, 17201.758219]),
    "crop_jitter-3x96/seed0":
        ("4b61ac3c16b5c5c7", [158361.635577, 168853.568677, 131788.286118, 129594.626081]),
    "crop_jitter-3x96/seed1":
        ("567ee5849155e333", [135335.844477, 162688.332369, 167734.174607, 142959.270257]),
    "simclr-noise-3x32/seed0":
        ("4d45449f658ac246", [18167.656366, 19651.600894, 18041.83847, 19582.8187]),
    "simclr-noise-3x32/seed1":
        ("a124a0cefe91c762", [16866.348722, 19557.913719, 17811.888249, 17025.55921]),
    "simclr-b64-3x32/seed0":
        ("30abac49717094c4", [97616.259811, 95127.917233, 97846.697092, 98809.530249]),
    "simclr-b64-3x32/seed1":
        ("689d75d45805dcdc", [92013.967882, 94203.101405, 94615.742219, 95972.969719]),
    "byol-b64-1x28/seed0":
        ("c22555432651b464", [25037.420955, 23466.967516, 25141.584555, 23010.179949]),
    "byol-b64-1x28/seed1":
        ("8f9a967c5e42012b", [23521.903783, 23266.042129, 24474.916014, 24084.57543]),
})


def cases():
    for name in A.PRESETS:
        for size, channels in ((28, 1), (32, 3), (96, 3)):
            kw = {"small_crops": 2} if name == "swav" else {}
            yield f"{name}-{channels}x{size}", A.preset(name, size, channels, **kw), 12
    yield "simclr-noise-3x32", A.preset("simclr", 32, 3, noise_std=0.05, blur_p=0.5), 12
    yield "simclr-b64-3x32", A.preset("simclr", 32, 3), 64
    yield "byol-b64-1x28", A.preset("byol", 28, 1), 64


def views_of(key: str, aug, n: int, seed: int) -> list[torch.Tensor]:
    channels, size = (int(v) for v in key.split("-")[-1].split("x"))
    x = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(100 + seed))
    g = torch.Generator().manual_seed(seed)
    return aug(x, generator=g) + aug(x.float() / 255, generator=g)  # uint8, then float input


def summary(views: list[torch.Tensor]) -> dict:
    data = b"".join(v.contiguous().numpy().tobytes() for v in views)
    return {"sha256": hashlib.sha256(data).hexdigest()[:16],
            "sums": [round(float(v.double().sum()), 6) for v in views]}


def current() -> dict:
    return {f"{key}/seed{seed}": summary(views_of(key, aug, n, seed))
            for key, aug, n in cases() for seed in (0, 1)}


if __name__ == "__main__":
    print(json.dumps(current()))


@pytest.mark.parametrize("key", sorted({k.split("/")[0] for k in EXPECTED}))
def test_views_equal_the_recorded_ones(key):
    aug, n = next((a, n) for k, a, n in cases() if k == key)
    for seed in (0, 1):
        got = summary(views_of(key, aug, n, seed))
        sha, sums = EXPECTED[f"{key}/seed{seed}"]
        assert got["sums"] == pytest.approx(sums, rel=1e-6, abs=1e-4), f"{key} seed {seed}"
        if (torch.__version__, torch.backends.cpu.get_cpu_capability()) == tuple(RECORDED.values()):
            assert got["sha256"] == sha, f"{key} seed {seed}: views differ from the recorded ones"


@pytest.mark.parametrize("channels", [1, 3])
def test_masked_jitter_equals_the_index_path(channels):
    """The device path (masks, every op on the whole batch) gives bit for bit the CPU path."""
    g = torch.Generator().manual_seed(5)
    x = torch.rand(40, channels, 16, 16, generator=g)
    params = A._jitter_params(40, 0.4, 0.4, 0.4, 0.1, 0.8, True, g)
    params = {k: v.reshape(40, -1).double() for k, v in params.items()}  # as after _to_device
    strengths = (0.4, 0.4, 0.4, 0.1)
    masked = A._apply_jitter(x, params, strengths, masked=True)
    assert torch.equal(masked, A._apply_jitter(x, params, strengths, masked=False))
    assert not torch.equal(masked, x)


class DeviceTraffic(torch.overrides.TorchFunctionMode):
    """Counts copies of CPU tensors to another device, and host reads of device tensors."""

    READS = {"item", "tolist", "nonzero", "numpy", "__bool__", "__int__", "__float__",
             "__index__", "masked_select", "unique", "argwhere"}

    def __init__(self):
        super().__init__()
        self.copies, self.reads = [], []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        if name in self.READS and any(t.device.type != "cpu" for t in tensors):
            self.reads.append(name)
        out = func(*args, **kwargs)
        if name in ("to", "cuda", "copy_", "_to_copy") and isinstance(out, torch.Tensor):
            src = args[1] if name == "copy_" else args[0]
            if src.device.type == "cpu" and out.device.type != "cpu":
                self.copies.append((name, tuple(src.shape)))
        return out


@pytest.mark.parametrize("name", A.PRESETS)
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32), (3, 96)])
def test_a_view_reads_nothing_back_and_copies_its_parameters_once(name, channels, size):
    """On the ``meta`` device (shapes only: any host read of its data raises) a view makes no
    .item()/.tolist()/nonzero/bool() call on device tensors and one host -> device copy."""
    kw = {"small_crops": 2} if name == "swav" else {}
    aug = A.preset(name, size, channels, **kw)
    x = torch.empty(8, channels, size, size, dtype=torch.uint8, device="meta")
    with DeviceTraffic() as traffic:
        views = aug(x, generator=torch.Generator().manual_seed(0))
    assert all(v.device.type == "meta" and v.shape[0] == 8 for v in views)
    assert traffic.reads == []
    assert len(traffic.copies) == len(aug), traffic.copies  # one packed copy per view
