"""The analysis of value-stack depths, and the shims' code made by hand.

The collector and the unpickler rely on knowing how deep a frame's value
stack is at each instruction (Stackless/core/stackdepth.c); the shims
that soft switching pushes (Stackless/core/shims.c) are code objects
assembled by hand, checked by that analysis when they are made.  The
analysis is compared here with one written from the dis module, on every
code object of the standard library."""

import dis
import os
import types
import unittest

import _stackless
from test import support
from test.support import refleak_helper

UNCONDITIONAL = {dis.opmap[name] for name in (
    "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT")}
SCOPE_EXITS = {dis.opmap[name] for name in (
    "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE")}
EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]


def dis_depths(co):
    """The depth before each code unit of co, -1 where none, followed
    through the instructions and exception table that dis shows, with
    dis.stack_effect(); AssertionError where paths disagree."""
    insts = list(dis.get_instructions(co))
    following = {a.offset: b.offset for a, b in zip(insts, insts[1:])}
    by_offset = {inst.offset: inst for inst in insts}
    depth = {}
    work = []

    def reach(offset, d):
        assert 0 <= d <= co.co_stacksize, (co, offset, d)
        if offset in depth:
            assert depth[offset] == d, (co, offset, depth[offset], d)
        else:
            depth[offset] = d
            work.append(offset)

    reach(0, 0)
    for entry in dis.Bytecode(co).exception_entries:
        reach(entry.target, entry.depth + entry.lasti + 1)
    while work:
        offset = work.pop()
        inst = by_offset[offset]
        d = depth[offset]
        if inst.opcode == EXTENDED_ARG:
            reach(following[offset], d)
            continue
        arg = inst.arg if inst.opcode >= dis.HAVE_ARGUMENT else None
        if inst.opcode in dis.hasjump:
            reach(inst.jump_target,
                  d + dis.stack_effect(inst.opcode, arg, jump=True))
        if (inst.opcode not in UNCONDITIONAL
                and inst.opcode not in SCOPE_EXITS
                and offset in following):
            reach(following[offset],
                  d + dis.stack_effect(inst.opcode, arg, jump=False))
    result = [-1] * (len(co.co_code) // 2)
    for offset, d in depth.items():
        result[offset // 2] = d
    return result


def code_objects(co):
    yield co
    for const in co.co_consts:
        if isinstance(const, types.CodeType):
            yield from code_objects(const)


def stdlib_code_objects():
    """The code objects of every module of the standard library (its
    tests too), compiled from source."""
    root = os.path.dirname(os.__file__)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    top = compile(f.read(), path, "exec")
            except (SyntaxError, ValueError, UnicodeDecodeError):
                continue    # test data that is not meant to compile
            yield from code_objects(top)


def sample():
    """Code that has the forms of interest: loops with long bodies
    (EXTENDED_ARG jumps), try/except/finally, with, async, generators,
    comprehensions, match."""
    body = "\n".join(f"        x{i} = x{i - 1} + {i}" if i
                     else "        x0 = 0" for i in range(200))
    src = f"""
def long_loop(n):
    while n:
{body}
        n -= 1
    return x199

async def agen(a):
    async with a as b:
        async for c in b:
            yield [d async for d in c]

def handlers(f):
    try:
        with f() as g:
            return {{k: v for k, v in g}}
    except* ValueError as e:
        raise RuntimeError from e
    finally:
        match f:
            case [1, *rest] if rest: pass
            case {{"a": 1}}: pass
"""
    return list(code_objects(compile(src, "<sample>", "exec")))


class StackDepthTest(unittest.TestCase):

    def test_sample(self):
        for co in sample():
            with self.subTest(code=co.co_name):
                self.assertEqual(_stackless._stack_depths(co), dis_depths(co))
                # The code the compiler makes passes the strict check.
                _stackless._check_code_flow(co, [(0, 0)])

    def test_every_stdlib_code_object(self):
        # The analysis follows every code object of the standard library
        # (what the collector would meet in a suspended frame), within
        # co_stacksize, and passes the check of the shims; the depths are
        # those of dis's view for one in 25 (all of them take a minute,
        # with `-u cpu` when not hunting leaks).
        every = 1
        if (not support.is_resource_enabled("cpu")
                or refleak_helper.hunting_for_refleaks()):
            every = 25
        n = 0
        for i, co in enumerate(stdlib_code_objects()):
            depths = _stackless._stack_depths(co)
            self.assertEqual(depths[0], 0)
            self.assertLessEqual(max(depths), co.co_stacksize)
            _stackless._check_code_flow(co, [(0, 0)])
            if i % every == 0:
                self.assertEqual(depths, dis_depths(co),
                                 f"{co.co_filename}: {co.co_qualname}")
            n += 1
        self.assertGreater(n, 10_000)

    def test_inconsistent_code_is_refused(self):
        def f(a):
            if a:
                a = 1
            return a
        co = f.__code__
        _stackless._check_code_flow(co, [(0, 0)])
        code = bytearray(co.co_code)
        ops = [(i, code[i]) for i in range(0, len(code), 2)]
        store = next(i for i, op in ops if op == dis.opmap["STORE_FAST"])
        # STORE_FAST made a NOP: one more value on one path than the other.
        broken = code.copy()
        broken[store] = dis.opmap["NOP"]
        bad = co.replace(co_code=bytes(broken))
        with self.assertRaises(ValueError):
            _stackless._stack_depths(bad)
        with self.assertRaises(ValueError):
            _stackless._check_code_flow(bad, [(0, 0)])
        # Off the end: the last RETURN_VALUE made a NOP.
        ret = max(i for i, op in ops if op == dis.opmap["RETURN_VALUE"])
        broken = code.copy()
        broken[ret] = dis.opmap["NOP"]
        broken[ret - 2] = dis.opmap["NOP"]      # and its LOAD_FAST
        with self.assertRaises(ValueError):
            _stackless._check_code_flow(co.replace(co_code=bytes(broken)),
                                        [(0, 0)])
        # An opcode nothing emits.
        unused = next(op for op in range(1, 256)
                      if dis.opname[op].startswith("<")
                      and op < dis.HAVE_ARGUMENT)
        broken = code.copy()
        broken[store] = unused
        with self.assertRaises(ValueError):
            _stackless._check_code_flow(co.replace(co_code=bytes(broken)),
                                        [(0, 0)])
        # Entries: too deep, negative, a cache, out of the code, two
        # depths at one place, too few values for the first instruction.
        call = next(i for i, op in ops if op == dis.opmap["TO_BOOL"]) // 2
        for entries in ([(0, co.co_stacksize + 1)], [(0, -1)],
                        [(call + 1, 1)], [(len(code) // 2, 0)],
                        [(0, 0), (0, 1)], [(store // 2, 0)]):
            with self.subTest(entries=entries):
                with self.assertRaises(ValueError):
                    _stackless._check_code_flow(co, entries)
        with self.assertRaises(TypeError):
            _stackless._check_code_flow(co, [0])
        with self.assertRaises(TypeError):
            _stackless._check_code_flow(co, None)

    def test_shims(self):
        shims = _stackless._shim_codes()
        self.assertEqual(set(shims), {
            "gen_next", "gen_next_default", "context_run", "send_sequence",
            "init_cleanup", "invalid_frame", "soft_switchable"})
        for name, co in shims.items():
            self.assertIsInstance(co, types.CodeType, name)
        # The states their frames are in (shims.c): each shim passes with
        # its own, and the checker tells a wrong one.
        gen = shims["gen_next"]
        _stackless._check_code_flow(gen, [(4, 2), (2, 2)])
        for wrong in ([(4, 1), (2, 2)], [(4, 2), (2, 1)], [(0, 0)]):
            with self.subTest(entries=wrong):
                with self.assertRaises(ValueError):
                    _stackless._check_code_flow(gen, wrong)
        _stackless._check_code_flow(shims["send_sequence"],
                                    [(0, 3), (19, 4), (2, 4), (10, 5)])
        with self.assertRaises(ValueError):
            _stackless._check_code_flow(shims["send_sequence"], [(0, 2)])


if __name__ == "__main__":
    unittest.main()
