"""The platform layer of hard switching, tested without Python.

Stackless/platf/test_switch.c drives the assembly stack switch and the
stack copying of Stackless/core/cstack.c with plain C tasks.  It is built
with the native compiler, and for each other supported architecture whose
cross compiler and qemu-user emulator are installed, and run.
"""

import os
import shutil
import subprocess
import sysconfig
import tempfile
import unittest

from test import support
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)

SRCDIR = sysconfig.get_config_var("srcdir") or ""
PLATF = os.path.join(SRCDIR, "Stackless", "platf")
SOURCES = ["test_switch.c", os.path.join("..", "core", "cstack.c"),
           "switch.S"]

# architecture -> (cross compiler, emulator)
CROSS = {
    "aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64"),
    "x86_64": ("x86_64-linux-gnu-gcc", "qemu-x86_64"),
}


def have_sources():
    return all(os.path.exists(os.path.join(PLATF, s)) for s in SOURCES)


@unittest.skipUnless(have_sources(), "needs the Stackless source tree")
@support.requires_subprocess()
class SwitchHarnessTest(unittest.TestCase):
    both_modes = False      # C code only: one run is enough

    def build_and_run(self, compiler, emulator=None, opt="-O2"):
        with tempfile.TemporaryDirectory() as tmp:
            exe = os.path.join(tmp, "test_switch")
            cmd = [compiler, opt, "-static", "-Wall", "-o", exe]
            cmd += SOURCES + ["-lm"]
            subprocess.run(cmd, cwd=PLATF, check=True, capture_output=True,
                           text=True)
            run = [emulator, exe] if emulator else [exe]
            proc = subprocess.run(run, capture_output=True, text=True,
                                  timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertTrue(proc.stdout.startswith("ok: "), proc.stdout)
        # 3 tasks x 2 passes x 2 x (200 + 1) switches
        self.assertIn("ok: 2412 switches", proc.stdout)

    def native_compiler(self):
        cc = sysconfig.get_config_var("CC") or "cc"
        cc = cc.split()[0]
        if not shutil.which(cc):
            self.skipTest(f"no C compiler ({cc})")
        return cc

    def test_native(self):
        cc = self.native_compiler()
        for opt in ("-O0", "-O2"):
            with self.subTest(opt=opt):
                self.build_and_run(cc, opt=opt)

    def test_cross_architectures(self):
        machine = os.uname().machine
        tested = []
        for arch, (cc, emulator) in CROSS.items():
            if arch == machine:
                continue
            if not (shutil.which(cc) and shutil.which(emulator)):
                continue
            for opt in ("-O0", "-O2"):
                with self.subTest(arch=arch, opt=opt):
                    self.build_and_run(cc, emulator, opt=opt)
            tested.append(arch)
        if not tested:
            self.skipTest("no cross compiler with a qemu-user emulator")


if __name__ == "__main__":
    unittest.main()
