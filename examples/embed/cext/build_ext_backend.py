"""A build backend (PEP 517) of its own, so that pip builds this package
offline with nothing but the interpreter: the C extension is compiled
with the compiler and flags the interpreter was built with (sysconfig),
and the wheel written by hand."""

import base64
import hashlib
import os
import shlex
import subprocess
import sysconfig
import zipfile

NAME = "slp_cext"
DIST = "slp_cext"
VERSION = "1.0"
HERE = os.path.dirname(os.path.abspath(__file__))


def _compile(out_dir):
    cfg = sysconfig.get_config_vars()
    ext = f"{NAME}{cfg['EXT_SUFFIX']}"
    target = os.path.join(out_dir, ext)
    cmd = (shlex.split(cfg["CC"]) + shlex.split(cfg["CFLAGS"] or "")
           + shlex.split(cfg["CCSHARED"] or "")
           + ["-I", sysconfig.get_paths()["include"], "-shared",
              os.path.join(HERE, f"{NAME}.c"), "-o", target])
    subprocess.run(cmd, check=True)
    return ext, target


def _tag():
    impl = "cp" + sysconfig.get_config_var("py_version_nodot")
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{impl}-{impl}-{plat}"


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return f"{name},sha256={digest.rstrip(b'=').decode()},{len(data)}"


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    ext, path = _compile(wheel_directory)
    tag = _tag()
    wheel_name = f"{DIST}-{VERSION}-{tag}.whl"
    info = f"{DIST}-{VERSION}.dist-info"
    files = {
        ext: open(path, "rb").read(),
        f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: slp-cext\n"
                             f"Version: {VERSION}\n").encode(),
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: {__name__}\n"
                          f"Root-Is-Purelib: false\nTag: {tag}\n").encode(),
    }
    os.unlink(path)
    record = [_record_line(n, d) for n, d in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return wheel_name


def get_requires_for_build_wheel(config_settings=None):
    return []
