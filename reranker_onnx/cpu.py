"""What this CPU can do, and which exported variant of a model should run on it.

Detection uses the standard library only: Linux ``/proc/cpuinfo``, macOS ``sysctl`` (a subprocess, only on
darwin), Windows ``IsProcessorFeaturePresent`` through ctypes. The parsers are pure functions on text, so
the tests feed them recorded dumps of machines we do not have. :func:`detect` never raises: what it could
not read is said in ``CpuFeatures.source`` and the choice falls back to what is known.

Choosing the variant (DESIGN.md, "Choosing the variant"); an explicit request always wins:

- x86-64 with AVX512-VNNI or AVX-VNNI → ``avx512_vnni`` (full-range s8 weights). Alder Lake's AVX-VNNI is
  256-bit only, but the variant is still numerically right there: onnxruntime's u8×s8 kernels on a VNNI
  CPU use VPDPBUSD, which sums the four byte products straight into 32 bits, so nothing saturates.
- x86-64 with AVX2 → ``avx2``: without VNNI the kernels add pairs of u8×s8 products into 16 bits
  (VPMADDUBSW), which saturates on full-range weights; this variant's weights use a reduced range.
- arm64 → ``arm64``. A Cortex-A72 (Raspberry Pi 4) has no dot-product instructions (no ``asimddp``); it
  still gets ``arm64``: onnxruntime has NEON int8 kernels for plain ARMv8.0 that widen and multiply the
  8-bit lanes, and the int8 model is 4× smaller, which matters on a 1-8 GB board. Its gain over fp32 is
  smaller than on a dot-product core, and unmeasured here (no such hardware): the reason says so. Those
  kernels add two s8×s8 products in 16 bits (SMULL+SMLAL) before widening, so they are exact only while
  the weights stay in [-127, 127], as symmetric int8 quantization keeps them.
- anything else, or the preferred variant missing from the model directory → ``fp32``, and the reason
  says why.

Windows cannot report VNNI through ``IsProcessorFeaturePresent``, so a Windows x86-64 host with AVX2 is
treated as AVX2-only and gets ``avx2``: slower than it could be on a VNNI CPU, never wrong.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from .errors import VariantError
from .manifest import Quantization

logger = logging.getLogger(__name__)

Arch = Literal["x86_64", "arm64", "other"]
VariantName = Literal["fp32", "avx2", "avx512_vnni", "arm64"]

VARIANTS: Final[tuple[VariantName, ...]] = ("fp32", "avx2", "avx512_vnni", "arm64")
ENV_VAR: Final = "RERANKER_ONNX_VARIANT"
PROC_CPUINFO: Final = Path("/proc/cpuinfo")

# The features that decide int8 kernels, in Linux /proc/cpuinfo spelling; other flags are dropped so that
# `rerank-onnx info` shows what matters and every platform reports the same names.
FEATURES_OF_INTEREST: Final = frozenset(
    {
        "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "amx_int8",  # x86-64
        "asimd", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme",  # arm64
    }
)  # fmt: skip

# Arm Ltd (CPU implementer 0x41) CPU part numbers, as /proc/cpuinfo prints them.
ARM_CORES: Final[Mapping[int, str]] = {
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD0D: "Cortex-A77",
    0xD40: "Neoverse-V1",
    0xD41: "Cortex-A78",
    0xD44: "Cortex-X1",
    0xD46: "Cortex-A510",
    0xD47: "Cortex-A710",
    0xD48: "Cortex-X2",
    0xD49: "Neoverse-N2",
    0xD4F: "Neoverse-V2",
    0xD80: "Cortex-A520",
    0xD81: "Cortex-A720",
    0xD82: "Cortex-X4",
}

# macOS hw.cpufamily (xnu's CPUFAMILY_ARM_* values, unsigned) → core pair and chip.
APPLE_CORES: Final[Mapping[int, str]] = {
    0x1B588BB3: "Firestorm/Icestorm (M1)",
    0xDA33D83D: "Blizzard/Avalanche (M2)",
    0xFA33415E: "Ibiza (M3)",
    0x5F4DEA93: "Lobos (M3 Pro)",
    0x72015832: "Palma (M3 Max)",
    0x6F5129AC: "Donan (M4)",
    0x17D5B93A: "Brava (M4 Pro/Max)",
}

# sysctl keys (value 1 = present) → feature names above.
SYSCTL_FEATURES: Final[Mapping[str, str]] = {
    "hw.optional.neon": "asimd",
    "hw.optional.AdvSIMD": "asimd",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.avx2_0": "avx2",
    "hw.optional.fma": "fma",
    "hw.optional.avx512f": "avx512f",
    "hw.optional.avx512bw": "avx512bw",
    "hw.optional.avx512vl": "avx512vl",
    "hw.optional.avx512vnni": "avx512_vnni",
}
SYSCTL_KEYS: Final = ("machdep.cpu.brand_string", "hw.cpufamily", "sysctl.proc_translated", "hw.optional")

# Windows PF_* constants for IsProcessorFeaturePresent. There is none for VNNI.
WINDOWS_FEATURES: Final[Mapping[int, str]] = {
    40: "avx2",  # PF_AVX2_INSTRUCTIONS_AVAILABLE
    41: "avx512f",  # PF_AVX512F_INSTRUCTIONS_AVAILABLE
    43: "asimddp",  # PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE
}


@dataclass(frozen=True)
class CpuFeatures:
    """The host as far as it could be read; ``source`` says from where, and what could not be read."""

    arch: Arch
    features: frozenset[str]
    model_name: str | None = None
    core_name: str | None = None
    source: str = ""
    machine: str = ""  # platform.machine() as reported, e.g. "AMD64", "aarch64", "armv7l"

    @property
    def has_vnni(self) -> bool:
        """x86-64 whose u8×s8 int8 kernels sum in 32 bits (AVX512-VNNI or AVX-VNNI): nothing saturates."""
        return self.arch == "x86_64" and bool({"avx512_vnni", "avx_vnni"} & self.features)


@dataclass(frozen=True)
class VariantChoice:
    """The variant to load and one plain sentence saying why (shown by ``rerank-onnx info``)."""

    variant: VariantName
    reason: str


def normalise_arch(machine: str) -> Arch:
    """Map ``platform.machine()`` spellings to the two architectures we ship int8 variants for."""
    name = machine.strip().lower()
    if name in {"x86_64", "amd64", "x64"}:
        return "x86_64"
    if name in {"aarch64", "arm64", "aarch64_be", "armv8b", "armv8l"}:
        return "arm64"
    return "other"


def _fields(text: str) -> list[tuple[str, str]]:
    """``key : value`` pairs in order; lines starting with ``#`` (fixture notes) are ignored."""
    pairs = []
    for line in text.splitlines():
        if line.lstrip().startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _first(pairs: Iterable[tuple[str, str]], key: str) -> str | None:
    return next((value for k, value in pairs if k == key and value), None)


def _int(value: str, base: int = 10) -> int | None:
    """``int(value, base)``, or None for text that is not a number (a truncated or odd dump)."""
    try:
        return int(value, base)
    except ValueError:
        return None


def _arm_core_name(pairs: list[tuple[str, str]]) -> str | None:
    """Name the cores from CPU implementer/part; big.LITTLE chips get "Cortex-A55 + Cortex-A76"."""
    names: list[str] = []
    implementer: int | None = None
    for key, value in pairs:
        if key == "CPU implementer":
            implementer = _int(value, 16)
        elif key == "CPU part" and implementer == 0x41:
            name = ARM_CORES.get(_int(value, 16) or -1)
            if name and name not in names:
                names.append(name)
    return " + ".join(names) or None


def parse_proc_cpuinfo(text: str, machine: str) -> CpuFeatures:
    """Parse Linux ``/proc/cpuinfo`` text. ``machine`` is ``platform.machine()`` of the reading process.

    The architecture comes from ``machine``, not from the text: under qemu-user the emulated process can
    see the host's x86 cpuinfo, and the kernels onnxruntime runs are those of the process.
    """
    arch = normalise_arch(machine)
    pairs = _fields(text)
    if arch == "x86_64":
        flags = _first(pairs, "flags") or ""
        model = _first(pairs, "model name")
        core = None
    elif arch == "arm64":
        flags = _first(pairs, "Features") or ""
        model = _first(pairs, "Model") or _first(pairs, "model name")  # Raspberry Pi boards print "Model"
        core = _arm_core_name(pairs)
    else:
        flags, model, core = "", _first(pairs, "model name"), None
    features = frozenset(flags.split()) & FEATURES_OF_INTEREST
    return CpuFeatures(arch, features, model, core, "/proc/cpuinfo", machine)


def parse_sysctl(text: str, machine: str | None = None) -> CpuFeatures:
    """Parse ``sysctl`` output (``name: value`` lines) from macOS.

    Without ``machine`` the architecture comes from ``hw.optional.arm64``. With it (the live case) the
    process's own architecture wins: an x86-64 Python under Rosetta 2 runs x86-64 kernels.
    """
    values = dict(_fields(text))
    features = frozenset(name for key, name in SYSCTL_FEATURES.items() if values.get(key) == "1")
    if machine is not None:
        arch = normalise_arch(machine)
    elif values.get("hw.optional.arm64") == "1":
        arch = "arm64"
    elif values.get("hw.optional.x86_64") == "1" or any(f.startswith("avx") for f in features):
        arch = "x86_64"
    else:
        arch = "other"
    family = _int(values.get("hw.cpufamily", ""))  # printed signed, e.g. -634136515 for M2
    core = APPLE_CORES.get(family & 0xFFFFFFFF) if family is not None else None
    source = "sysctl"
    if values.get("sysctl.proc_translated") == "1":
        source += " (process runs under Rosetta 2)"
    model = values.get("machdep.cpu.brand_string") or None
    return CpuFeatures(arch, features, model, core, source, machine or "")


def parse_windows(is_present: Callable[[int], bool], machine: str, model_name: str | None = None) -> CpuFeatures:
    """Build features from ``IsProcessorFeaturePresent``; Windows has no PF_ constant for VNNI."""
    features = frozenset(name for pf, name in WINDOWS_FEATURES.items() if is_present(pf))
    arch = normalise_arch(machine)
    if arch == "arm64":
        features |= {"asimd"}  # Advanced SIMD is mandatory on AArch64
    return CpuFeatures(arch, features, model_name, None, "IsProcessorFeaturePresent (cannot report VNNI)", machine)


def _unread(machine: str, note: str) -> CpuFeatures:
    """The host with no features known: the choice then rests on the architecture alone."""
    return CpuFeatures(normalise_arch(machine), frozenset(), source=note, machine=machine)


def _detect_linux(machine: str, path: Path = PROC_CPUINFO) -> CpuFeatures:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return _unread(machine, f"{path} unreadable ({exc})")
    return parse_proc_cpuinfo(text, machine)


def _run_sysctl() -> str:
    """Ask sysctl for the keys we read; unknown keys (older macOS) only add to stderr."""
    exe = "/usr/sbin/sysctl" if os.path.exists("/usr/sbin/sysctl") else "sysctl"
    done = subprocess.run([exe, *SYSCTL_KEYS], capture_output=True, text=True, timeout=10, check=False)
    return done.stdout


def _detect_darwin(machine: str, run: Callable[[], str] = _run_sysctl) -> CpuFeatures:
    try:
        text = run()
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("cannot run sysctl: %s", exc)
        return _unread(machine, f"sysctl failed ({exc})")
    cpu = parse_sysctl(text, machine)
    return cpu if text.strip() else replace(cpu, source="sysctl printed nothing")


def _windows_model_name() -> str | None:
    if sys.platform != "win32":
        return None
    import winreg

    try:
        key = r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
            return str(winreg.QueryValueEx(handle, "ProcessorNameString")[0]).strip() or None
    except OSError:
        return None


def _detect_windows(machine: str) -> CpuFeatures:
    if sys.platform != "win32":
        return _unread(machine, "IsProcessorFeaturePresent exists only on Windows")
    import ctypes

    try:
        present = ctypes.windll.kernel32.IsProcessorFeaturePresent
    except (AttributeError, OSError) as exc:
        logger.warning("cannot call IsProcessorFeaturePresent: %s", exc)
        return _unread(machine, f"kernel32 unavailable ({exc})")
    return parse_windows(lambda pf: bool(present(pf)), machine, _windows_model_name())


def detect() -> CpuFeatures:
    """Read the live host. Never raises: on failure, return what is known and say what was not read."""
    machine = platform.machine()
    try:
        if sys.platform.startswith("linux"):
            return _detect_linux(machine)
        if sys.platform == "darwin":
            return _detect_darwin(machine)
        if sys.platform == "win32":
            return _detect_windows(machine)
    except Exception as exc:  # a CPU probe must never stop the runtime: logged, and said in `source`
        logger.warning("CPU feature detection failed: %s", exc, exc_info=True)
        return _unread(machine, f"detection failed ({exc!r})")
    return _unread(machine, f"no feature detection on {sys.platform}")


def requested_variant(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The variant asked for: ``explicit`` (argument or CLI flag) if given, else ``RERANKER_ONNX_VARIANT``."""
    if explicit is not None:
        return explicit
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return value or None


def _preferred(cpu: CpuFeatures) -> tuple[VariantName, str, str]:
    """(variant, what the host is, why that variant) for automatic choice."""
    has = cpu.features
    if cpu.has_vnni:
        kind = "AVX512-VNNI" if "avx512_vnni" in has else "AVX-VNNI (256-bit)"
        return "avx512_vnni", f"x86-64 with {kind}", "full-range int8 weights; VNNI sums in 32 bits"
    if cpu.arch == "x86_64":
        if "avx2" in has:
            return "avx2", "x86-64 with AVX2 but no VNNI", "saturation-safe int8: reduced-range or uint8 weights, as measured at export"
        return "fp32", "x86-64 without AVX2", "the int8 variants are built for AVX2 or newer"
    if cpu.arch == "arm64":
        core = f" {cpu.core_name}" if cpu.core_name else ""
        if "asimddp" in has:
            extra = " and i8mm" if "i8mm" in has else ""
            return "arm64", f"arm64{core} with dot-product{extra} instructions", "int8 kernels use SDOT/UDOT"
        return (
            "arm64",
            f"arm64{core} without dot-product instructions",
            "the int8 model is 4× smaller, but its gain over fp32 is smaller without SDOT/UDOT "
            "and unmeasured on this core",
        )
    host = f"unrecognised architecture ({cpu.machine or 'unknown'})"
    return "fp32", host, "int8 variants exist only for x86-64 and arm64"


def needs_exact_int8(cpu: CpuFeatures, quantization: Quantization | None) -> bool:
    """The one rule for when int8 needs onnxruntime's exact u8×u8 path (``session.x64quantprecision``):
    weights that saturate the u8×s8 16-bit sums, on an x86-64 host without VNNI. The runtime asks it
    before loading a graph, the export before measuring one, the bench before choosing a peer's preset."""
    return cpu.arch == "x86_64" and not cpu.has_vnni and quantization is not None and quantization.saturates_without_vnni


def choose_variant(cpu: CpuFeatures, available: Iterable[str], requested: str | None = None) -> VariantChoice:
    """Pick the variant to load from those the model directory ships (``available``).

    ``requested`` (see :func:`requested_variant`) wins; it must be a known name the model ships.
    """
    shipped = frozenset(available)
    listing = ", ".join(sorted(shipped)) or "nothing"
    if requested is not None:
        name = next((v for v in VARIANTS if v == requested.strip().lower()), None)
        if name is None:
            raise VariantError(f"unknown variant {requested!r}; known variants: {', '.join(VARIANTS)}")
        if name not in shipped:
            raise VariantError(f"variant {name!r} was requested but this model does not ship it; it ships: {listing}")
        return VariantChoice(name, f"{name} was requested explicitly (argument, flag or {ENV_VAR})")
    variant, host, why = _preferred(cpu)
    if variant in shipped:
        return VariantChoice(variant, f"{host}: {variant} ({why})")
    if "fp32" in shipped:
        return VariantChoice("fp32", f"{host}; this model does not ship {variant}, so fp32 instead")
    if "avx2" in shipped:  # e.g. the bundled default model: one int8 graph, no fp32
        return VariantChoice("avx2", f"{host}; this model ships neither {variant} nor fp32, so avx2, "
                                     "whose int8 weights cannot saturate on any CPU")
    wanted = "'fp32'" if variant == "fp32" else f"{variant!r} or 'fp32'"
    raise VariantError(
        f"{host} needs variant {wanted}, which this model does not ship (it ships: {listing}); "
        f"choose one explicitly with the variant argument, --variant or {ENV_VAR}"
    )
