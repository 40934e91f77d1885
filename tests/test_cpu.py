"""CPU detection and variant choice, on recorded dumps of machines we do not have (tests/data/cpuinfo)."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from reranker_onnx import cpu
from reranker_onnx.errors import VariantError

DATA = Path(__file__).parent / "data" / "cpuinfo"
ALL = {"fp32", "avx2", "avx512_vnni", "arm64"}


def load(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# fixture, machine, arch, features present, features absent, core name, model name, variant for ALL
PROC_CASES = [
    ("host_amd_epyc_avx2.txt", "x86_64", "x86_64", {"avx2", "fma"}, {"avx512f", "avx512_vnni", "avx_vnni"},
     None, "AMD EPYC", "avx2"),
    ("xeon_8275cl_cascade_lake.txt", "x86_64", "x86_64", {"avx2", "avx512f", "avx512bw", "avx512_vnni"},
     {"avx_vnni", "amx_int8"}, None, "Intel(R) Xeon(R) Platinum 8275CL CPU @ 3.00GHz", "avx512_vnni"),
    ("i5_12400_alder_lake.txt", "x86_64", "x86_64", {"avx2", "avx_vnni"}, {"avx512f", "avx512_vnni"},
     None, "12th Gen Intel(R) Core(TM) i5-12400", "avx512_vnni"),
    ("rpi4_cortex_a72.txt", "aarch64", "arm64", {"asimd"}, {"asimddp", "i8mm", "sve"},
     "Cortex-A72", "Raspberry Pi 4 Model B Rev 1.4", "arm64"),
    ("rpi5_cortex_a76.txt", "aarch64", "arm64", {"asimd", "asimddp"}, {"i8mm", "sve"},
     "Cortex-A76", None, "arm64"),
    ("graviton3_neoverse_v1.txt", "aarch64", "arm64", {"asimd", "asimddp", "i8mm", "bf16", "sve"}, {"sve2", "sme"},
     "Neoverse-V1", None, "arm64"),
]  # fmt: skip


@pytest.mark.parametrize("name, machine, arch, present, absent, core, model, variant", PROC_CASES)
def test_proc_cpuinfo_fixture(
    name: str, machine: str, arch: str, present: set[str], absent: set[str], core: str | None, model: str | None,
    variant: str,
) -> None:  # fmt: skip
    found = cpu.parse_proc_cpuinfo(load(name), machine)
    assert found.arch == arch
    assert present <= found.features, f"{name}: missing {present - found.features}"
    assert not absent & found.features, f"{name}: unexpected {absent & found.features}"
    assert found.features <= cpu.FEATURES_OF_INTEREST
    assert found.core_name == core
    assert found.model_name == model
    assert found.source == "/proc/cpuinfo"
    assert cpu.choose_variant(found, ALL).variant == variant


@pytest.mark.parametrize(
    "name, family, core, i8mm",
    [("sysctl_apple_m1.txt", 458787763, "Firestorm/Icestorm (M1)", False),
     ("sysctl_apple_m2.txt", -634136515, "Blizzard/Avalanche (M2)", True)],
)  # fmt: skip
def test_sysctl_fixture(name: str, family: int, core: str, i8mm: bool) -> None:
    found = cpu.parse_sysctl(load(name))
    assert found.arch == "arm64"
    assert {"asimd", "asimddp"} <= found.features
    assert ("i8mm" in found.features) is i8mm
    assert ("bf16" in found.features) is i8mm  # M1 has neither, M2 both
    assert found.core_name == core
    assert found.model_name is None  # `sysctl hw` does not print machdep.cpu.brand_string
    choice = cpu.choose_variant(found, ALL)
    assert choice.variant == "arm64"
    assert "dot-product" in choice.reason


def test_sysctl_intel_mac_and_brand_string() -> None:
    text = (
        "machdep.cpu.brand_string: Intel(R) Xeon(R) W-3245 CPU @ 3.20GHz\n"
        "hw.optional.x86_64: 1\nhw.optional.avx2_0: 1\nhw.optional.avx512f: 1\nhw.optional.avx512vnni: 1\n"
    )
    found = cpu.parse_sysctl(text)
    assert found.arch == "x86_64"
    assert found.model_name == "Intel(R) Xeon(R) W-3245 CPU @ 3.20GHz"
    assert {"avx2", "avx512f", "avx512_vnni"} <= found.features
    assert cpu.choose_variant(found, ALL).variant == "avx512_vnni"


def test_sysctl_process_architecture_wins_under_rosetta() -> None:
    found = cpu.parse_sysctl(load("sysctl_apple_m1.txt") + "sysctl.proc_translated: 1\n", machine="x86_64")
    assert found.arch == "x86_64"
    assert "Rosetta" in found.source
    assert cpu.choose_variant(found, ALL).variant == "fp32"  # no AVX2 reported: nothing int8 is safe to assume


def test_windows_features_and_vnni_limit() -> None:
    x86 = cpu.parse_windows(lambda pf: pf in {40, 41}, "AMD64", "Some CPU")
    assert x86.arch == "x86_64"
    assert x86.features == {"avx2", "avx512f"}
    assert "VNNI" in x86.source
    choice = cpu.choose_variant(x86, ALL)
    assert choice.variant == "avx2"  # Windows cannot report VNNI: the safe variant
    arm = cpu.parse_windows(lambda pf: pf == 43, "ARM64")
    assert arm.arch == "arm64"
    assert {"asimd", "asimddp"} <= arm.features


@pytest.mark.parametrize(
    "machine, arch",
    [("x86_64", "x86_64"), ("AMD64", "x86_64"), ("aarch64", "arm64"), ("arm64", "arm64"), ("ARM64", "arm64"),
     ("armv7l", "other"), ("riscv64", "other"), ("", "other")],
)  # fmt: skip
def test_normalise_arch(machine: str, arch: str) -> None:
    assert cpu.normalise_arch(machine) == arch


def test_cortex_a72_reason_says_no_dot_product() -> None:
    found = cpu.parse_proc_cpuinfo(load("rpi4_cortex_a72.txt"), "aarch64")
    choice = cpu.choose_variant(found, ALL)
    assert choice.variant == "arm64"
    assert "Cortex-A72 without dot-product instructions" in choice.reason
    assert "unmeasured" in choice.reason


def test_reasons_are_one_sentence() -> None:
    host = cpu.parse_proc_cpuinfo(load("host_amd_epyc_avx2.txt"), "x86_64")
    reason = cpu.choose_variant(host, ALL).reason
    assert reason == "x86-64 with AVX2 but no VNNI: avx2 (saturation-safe int8: reduced-range or uint8 weights, as measured at export)"
    alder = cpu.parse_proc_cpuinfo(load("i5_12400_alder_lake.txt"), "x86_64")
    assert "AVX-VNNI" in cpu.choose_variant(alder, ALL).reason


def test_missing_variant_falls_back_to_fp32() -> None:
    xeon = cpu.parse_proc_cpuinfo(load("xeon_8275cl_cascade_lake.txt"), "x86_64")
    choice = cpu.choose_variant(xeon, {"fp32", "avx2"})
    assert choice.variant == "fp32"
    assert "does not ship avx512_vnni" in choice.reason
    pi5 = cpu.parse_proc_cpuinfo(load("rpi5_cortex_a76.txt"), "aarch64")
    assert cpu.choose_variant(pi5, {"fp32"}).variant == "fp32"


def test_unknown_architecture_gets_fp32() -> None:
    riscv = cpu.CpuFeatures("other", frozenset(), machine="riscv64")
    choice = cpu.choose_variant(riscv, ALL)
    assert choice.variant == "fp32"
    assert "riscv64" in choice.reason


def test_without_fp32_the_saturation_safe_avx2_graph_serves_any_cpu() -> None:
    pi4 = cpu.parse_proc_cpuinfo(load("rpi4_cortex_a72.txt"), "aarch64")
    choice = cpu.choose_variant(pi4, {"avx2", "avx512_vnni"})
    assert choice.variant == "avx2" and "cannot saturate" in choice.reason
    old_x86 = cpu.CpuFeatures("x86_64", frozenset({"sse4_1"}), machine="x86_64")
    assert cpu.choose_variant(old_x86, {"avx2", "arm64"}).variant == "avx2"


def test_no_usable_variant_raises() -> None:
    pi4 = cpu.parse_proc_cpuinfo(load("rpi4_cortex_a72.txt"), "aarch64")
    with pytest.raises(VariantError, match="it ships: avx512_vnni"):
        cpu.choose_variant(pi4, {"avx512_vnni"})


def test_explicit_request_wins() -> None:
    host = cpu.parse_proc_cpuinfo(load("host_amd_epyc_avx2.txt"), "x86_64")
    choice = cpu.choose_variant(host, ALL, "fp32")
    assert choice.variant == "fp32"
    assert "explicitly" in choice.reason
    assert cpu.choose_variant(host, ALL, " AVX512_VNNI ").variant == "avx512_vnni"


def test_env_var_wins_over_auto() -> None:
    host = cpu.parse_proc_cpuinfo(load("host_amd_epyc_avx2.txt"), "x86_64")
    env = {cpu.ENV_VAR: "fp32"}
    assert cpu.requested_variant(None, env) == "fp32"
    assert cpu.choose_variant(host, ALL, cpu.requested_variant(None, env)).variant == "fp32"
    assert cpu.requested_variant("arm64", env) == "arm64"  # the argument (CLI flag) beats the env var
    assert cpu.requested_variant(None, {cpu.ENV_VAR: "  "}) is None
    assert cpu.requested_variant(None, {}) is None


def test_env_var_read_from_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cpu.ENV_VAR, "avx2")
    assert cpu.requested_variant(None) == "avx2"
    monkeypatch.delenv(cpu.ENV_VAR)
    assert cpu.requested_variant(None) is None


def test_unknown_variant_lists_known_names() -> None:
    host = cpu.parse_proc_cpuinfo(load("host_amd_epyc_avx2.txt"), "x86_64")
    with pytest.raises(VariantError) as info:
        cpu.choose_variant(host, ALL, "avx512")
    message = str(info.value)
    assert "'avx512'" in message
    assert "known variants: fp32, avx2, avx512_vnni, arm64" in message


def test_known_but_not_shipped_lists_what_ships() -> None:
    host = cpu.parse_proc_cpuinfo(load("host_amd_epyc_avx2.txt"), "x86_64")
    with pytest.raises(VariantError, match=r"does not ship it; it ships: avx2, fp32$"):
        cpu.choose_variant(host, {"fp32", "avx2"}, "arm64")


def test_comment_lines_and_garbage_are_ignored() -> None:
    text = "# Features : asimddp i8mm\nnot a field\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: zz\n"
    found = cpu.parse_proc_cpuinfo(text, "aarch64")
    assert found.features == {"asimd"}
    assert found.core_name is None


def test_big_little_cores_are_all_named() -> None:
    text = "".join(
        f"processor\t: {i}\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\nCPU part\t: {part}\n\n"
        for i, part in enumerate(["0xd05", "0xd05", "0xd0b"])
    )
    assert cpu.parse_proc_cpuinfo(text, "aarch64").core_name == "Cortex-A55 + Cortex-A76"


def test_unreadable_sources_do_not_raise(tmp_path: Path) -> None:
    linux = cpu._detect_linux("x86_64", tmp_path / "missing")
    assert linux.arch == "x86_64" and linux.features == frozenset()
    assert "unreadable" in linux.source
    assert cpu.choose_variant(linux, ALL).variant == "fp32"

    def broken() -> str:
        raise FileNotFoundError("sysctl")

    mac = cpu._detect_darwin("arm64", broken)
    assert mac.arch == "arm64" and "sysctl failed" in mac.source
    assert cpu.choose_variant(mac, ALL).variant == "arm64"
    assert "printed nothing" in cpu._detect_darwin("arm64", lambda: "").source


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="patches the Linux probe")
def test_detect_survives_an_unexpected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(machine: str) -> cpu.CpuFeatures:
        raise RuntimeError("odd kernel")

    monkeypatch.setattr(cpu, "_detect_linux", boom)
    found = cpu.detect()
    assert "detection failed" in found.source and "odd kernel" in found.source
    assert found.arch == cpu.normalise_arch(platform.machine())


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and cpu.normalise_arch(platform.machine()) == "x86_64"),
    reason="the live check describes this project's Linux x86-64 host",
)
def test_detect_live_host() -> None:
    found = cpu.detect()  # must not raise
    assert found.arch == "x86_64"
    assert "avx2" in found.features
    assert found.source == "/proc/cpuinfo"
    assert cpu.choose_variant(found, ALL).variant in {"avx2", "avx512_vnni"}
