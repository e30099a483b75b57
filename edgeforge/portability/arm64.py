"""An aarch64 Python environment on an x86-64 machine, from the registries alone, and a way to run in it.

- a Debian arm64 root (``mmdebstrap --variant=extract``: packages unpacked, no maintainer script run, so no
  binfmt_misc is needed) holding the distribution's Python and the C++ runtime the wheels link against;
- the thin runtime installed into it from PyPI's manylinux aarch64 wheels by the host's pip
  (``pip install --target --platform``): edgeforge's own wheel with its declared dependencies and no extras
  -- which is the proof that the runtime needs numpy + onnxruntime + Pillow and nothing else -- plus OpenVINO
  in a folder of its own, for the IR variants, and ai-edge-litert in another, for the .tflite ones; versions
  pinned to this machine's, so what differs between the two platforms is the kernels, not the releases;
- ``qemu-aarch64-static -L ROOT`` runs that Python: qemu looks absolute paths up in ROOT first, so the
  interpreter finds its libraries there and still reads the artifacts and images on this machine's paths.

The emulated CPU is qemu's Neoverse-N1 model (Armv8.2 with dot product: the sdot int8 kernels phones and
Graviton2-class boards run). qemu-user shows a program the host's /proc/cpuinfo, which onnxruntime's cpuinfo
library cannot parse on ARM (it crashed on import: seen with qemu 7.2); the root therefore carries the
/proc/cpuinfo and MIDR_EL1 files a Linux kernel shows on that CPU -- a description of the emulated CPU, read
through the same -L lookup. Speed under emulation means nothing and is never reported.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from edgeforge.errors import EdgeforgeError

SUITE = "bookworm"  # Debian 12: Python 3.11 and glibc 2.36
PACKAGES = ("python3", "libstdc++6", "libgomp1")
QEMU_CPU = "neoverse-n1"
#: what Linux shows for two Neoverse-N1 cores (MIDR 0x413fd0c1: Arm Ltd, part 0xd0c, r3p1)
MIDR = "0x00000000413fd0c1"
CPU_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
#: the packages each site folder takes at this machine's versions (the core ones come from edgeforge's wheel)
PINNED = ("numpy", "onnxruntime", "Pillow")
EXTRA_SITES = {"openvino": ("openvino",), "litert": ("ai-edge-litert",)}
TOOLS = {"mmdebstrap": "mmdebstrap", "qemu-aarch64-static": "qemu-user-static"}
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgeforge" / "arm64"


def check_tools() -> None:
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise EdgeforgeError(f"the ARM64 check needs Debian's {' and '.join(missing)}: "
                             f"apt-get install {' '.join(missing)}")


class Arm64Environment:
    """An aarch64 root plus site folders under ``cache`` (kept between runs; rebuilt when missing)."""

    def __init__(self, cache: Path = DEFAULT_CACHE):
        self.cache = Path(cache)
        self.root = self.cache / f"debian-{SUITE}-arm64"
        self.sites = self.cache / "site"

    # --- preparing -------------------------------------------------------------------------------
    def prepare(self, project: Path, log=print) -> None:
        """The root (once per cache) and, each time, edgeforge's wheel from ``project`` with its dependencies."""
        check_tools()
        if not (self.root / "usr" / "bin").is_dir():
            log(f"building the Debian {SUITE} arm64 root (mmdebstrap) in {self.root}")
            self._build_root()
        self._describe_cpu()
        log("installing the runtime's aarch64 wheels (pip --platform)")
        with tempfile.TemporaryDirectory(prefix="edgeforge-wheel-") as tmp:
            _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                  "-w", tmp, str(project)], "building edgeforge's wheel")
            wheel = next(Path(tmp).glob("edgeforge-*.whl"))
            self._install("core", [str(wheel), *_pins(PINNED)])
        for name, packages in EXTRA_SITES.items():
            self._install(name, _pins(packages))

    def _build_root(self) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix="root-", dir=self.cache))
        try:
            _run(["mmdebstrap", "--quiet", "--variant=extract", "--architectures=arm64",
                  f"--include={','.join(PACKAGES)}", SUITE, str(partial)], "mmdebstrap")
            partial.replace(self.root)  # whole or not at all
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def _describe_cpu(self) -> None:
        cores = [f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: {CPU_FEATURES}\nCPU implementer\t: 0x41\n"
                 f"CPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n" for i in range(2)]
        (self.root / "proc").mkdir(exist_ok=True)
        (self.root / "proc" / "cpuinfo").write_text("\n".join(cores))
        for i in range(2):
            ident = self.root / f"sys/devices/system/cpu/cpu{i}/regs/identification"
            ident.mkdir(parents=True, exist_ok=True)
            (ident / "midr_el1").write_text(MIDR + "\n")

    def _install(self, site: str, requirements: list[str]) -> None:
        """pip-install aarch64 wheels into a fresh site folder, swapped in whole."""
        target = self.sites / site
        self.sites.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f"{site}-", dir=self.sites))
        try:
            platforms = [arg for tag in self._platform_tags for arg in ("--platform", tag)]
            _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "--target", str(partial), *platforms, "--python-version", self.python_version(),
                  "--implementation", "cp", "--only-binary=:all:", *requirements], f"pip (aarch64 {site})")
            shutil.rmtree(target, ignore_errors=True)
            partial.replace(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    @functools.cached_property
    def _platform_tags(self) -> list[str]:
        """manylinux aarch64 tags the root's glibc accepts (2_17 .. its own version); read once, from libc."""
        libc = next((p for p in (self.root / "lib/aarch64-linux-gnu/libc.so.6",
                                 self.root / "usr/lib/aarch64-linux-gnu/libc.so.6") if p.is_file()), None)
        found = libc and re.search(rb"GNU C Library[^\n]*version 2\.(\d+)", libc.read_bytes())
        minor = int(found.group(1)) if found else 17
        return ["manylinux2014_aarch64", *(f"manylinux_2_{m}_aarch64" for m in range(17, minor + 1))]

    def python_version(self) -> str:
        pythons = sorted((self.root / "usr/bin").glob("python3.*[0-9]"))
        if not pythons:
            raise EdgeforgeError(f"{self.root} has no Python; remove it to rebuild")
        return pythons[-1].name.removeprefix("python")

    def installed(self, site: str = "core") -> list[str]:
        """The distributions a site folder holds, as name==version (what the runtime really pulled in)."""
        return sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions(path=[str(self.sites / site)]))

    # --- running ---------------------------------------------------------------------------------
    def command(self, args: list[str]) -> list[str]:
        python = self.root / "usr/bin" / f"python{self.python_version()}"
        return ["qemu-aarch64-static", "-cpu", QEMU_CPU, "-L", str(self.root), str(python), *args]

    def environment(self, sites: tuple[str, ...] = ("core", *EXTRA_SITES)) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OPENBLAS", "VIRTUAL_ENV"))}
        env.update(PYTHONPATH=os.pathsep.join(str(self.sites / s) for s in sites), PYTHONNOUSERSITE="1",
                   PYTHONDONTWRITEBYTECODE="1")
        return env

    def run(self, args: list[str], on_line=None, timeout: float = 3600) -> tuple[int, list[str]]:
        """Run the aarch64 Python with ``args``; each line it writes to stderr goes to ``on_line`` as it comes.
        Returns (exit status, the stderr lines)."""
        lines: list[str] = []
        with subprocess.Popen(self.command(args), env=self.environment(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) as process:
            timer = threading.Timer(timeout, process.kill)
            timer.start()
            try:
                for line in process.stderr:
                    lines.append(line.rstrip("\n"))
                    if on_line:
                        on_line(lines[-1])
            finally:
                timer.cancel()
            return process.wait(), lines


def _pins(packages) -> list[str]:
    """``name==version`` of this machine's install of each package, so both platforms run the same releases."""
    pins = []
    for name in packages:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines()
                 if line.strip() and not line.startswith("WARNING: Location")]
        raise EdgeforgeError(f"{what} failed: {lines[-1] if lines else f'exit {result.returncode}'}")
