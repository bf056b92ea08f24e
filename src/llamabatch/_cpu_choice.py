"""Which build of the compiled module runs on this CPU.

A portable build (``LLAMABATCH_PORTABLE=ON``) carries one ``_core`` per x86-64
level in ``llamabatch/_variants/<name>/``; the best one whose instructions this
CPU runs is imported, or the one ``LLAMABATCH_CPU=<name>`` names. A native build
carries one module compiled for its build machine's CPU, and refuses to load,
with an error that names the fix, on a CPU that lacks what it was compiled for.

The CPU's features are read with CPUID by ``llamabatch._cpuid``, a small module
compiled for the x86-64 baseline, so the choice is right under an emulator too.
"""
from __future__ import annotations

import os
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENV = "LLAMABATCH_CPU"
NATIVE = "native"
_FIX = "README: Which wheel runs where"


@dataclass(frozen=True)
class CpuChoice:
    """The module this process runs: ``variant`` ("native" for a one-module build), why, and what else there was."""

    variant: str
    reason: str
    available: tuple[str, ...]


def choose_variant(variants: Sequence[tuple[str, Sequence[str]]], features: Mapping[str, bool],
                   forced: str | None) -> CpuChoice:
    """The portable build's variant for a CPU with these features: ``forced`` if it runs here, else the best one.

    ``variants`` go from the baseline to the best, each with the /proc/cpuinfo
    flags it needs. Raises ImportError when the forced variant is unknown or
    needs what the CPU lacks (it would die of SIGILL), or when no variant runs.
    """
    names = tuple(name for name, _ in variants)
    have = {name for name, present in features.items() if present}
    missing = {name: sorted(set(needs) - have) for name, needs in variants}
    if forced:
        if forced not in missing:
            raise ImportError(f"{ENV}={forced!r} names no CPU variant of this build; choose one of "
                              f"{', '.join(names)}, or unset {ENV} to let llamabatch choose")
        if missing[forced]:
            raise ImportError(f"{ENV}={forced}: this CPU lacks {', '.join(missing[forced])}, which that variant "
                              f"needs, so it would crash (SIGILL); the variants this CPU runs: "
                              f"{', '.join(n for n in names if not missing[n]) or 'none'}")
        return CpuChoice(forced, f"forced by {ENV}={forced}", names)
    runnable = [name for name in names if not missing[name]]
    if not runnable:
        raise ImportError(f"this CPU lacks {', '.join(missing[names[0]])}, which even the baseline variant "
                          f"({names[0]}) needs; build llamabatch from source on this machine ({_FIX})")
    best = runnable[-1]
    reason = f"the best variant this CPU runs ({len(runnable)} of {len(names)} do)"
    above = names.index(best) + 1
    if above < len(names):
        reason += f"; {names[above]} needs {', '.join(missing[names[above]])}"
    return CpuChoice(best, reason, names)


def check_native(built_for: Sequence[str], features: Mapping[str, bool], forced: str | None) -> CpuChoice:
    """A one-module build: refuses a forced variant, and a CPU without what ``-march=native`` compiled for."""
    if forced and forced != NATIVE:
        raise ImportError(f"{ENV}={forced!r}: this llamabatch is a native build, one module compiled for the CPU "
                          f"it was built on; unset {ENV}, or install a portable build ({_FIX})")
    compiled_for = set(built_for)
    lacking = sorted(name for name, present in features.items() if not present and name in compiled_for)
    if lacking:
        raise ImportError(f"this llamabatch was compiled for its build machine's CPU (-march=native), and this CPU "
                          f"lacks {', '.join(lacking)}, so it would crash (SIGILL); reinstall it from source on this "
                          f"machine (pip install --force-reinstall --no-binary llamabatch llamabatch), or install a "
                          f"portable build ({_FIX})")
    reason = ("compiled for the build machine's CPU (-march=native), whose features this CPU has" if built_for
              else "one module, compiled without -march=native")
    return CpuChoice(NATIVE, reason, (NATIVE,))


def variant_module(variant: str) -> Path:
    """The file of a portable build's variant module."""
    return Path(__file__).parent / "_variants" / variant / f"_core{sysconfig.get_config_var('EXT_SUFFIX')}"


def choose(variants: Sequence[tuple[str, Sequence[str]]] | None, built_for: Sequence[str]) -> CpuChoice:
    """This process's choice, from the build's record (``_build``), CPUID and ``LLAMABATCH_CPU``."""
    from . import _cpuid

    features = _cpuid.cpu_features()
    forced = os.environ.get(ENV, "").strip() or None
    if variants is None:
        return check_native(built_for, features, forced)
    return choose_variant(variants, features, forced)
