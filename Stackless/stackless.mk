# Stackless: the build of our own C code, included by the interpreter's
# Makefile.pre.in (patch build-stackless-core.patch).  Everything under
# Stackless/ is listed here; the upstream Makefile only names
# $(STACKLESS_OBJS) among the core objects.

STACKLESS_INCLUDES=	-I$(srcdir)/Stackless/Include

# Our headers are needed by the hooks in upstream files as well, in the
# core and in builtin modules (_thread).  (STACKLESS is not defined:
# pycore_stackless.h gives METH_STACKLESS its bit, without the tp_flags
# that object.h would give every type.)
PY_CORE_CFLAGS+=	$(STACKLESS_INCLUDES)
PY_BUILTIN_MODULE_CFLAGS+=	$(STACKLESS_INCLUDES)
# ... and in the shared module _pickle (the dicts of modules, spec P-9).
MODULE__PICKLE_CFLAGS+=	$(STACKLESS_INCLUDES)

STACKLESS_HEADERS= \
		$(srcdir)/Stackless/Include/pycore_stackless.h \
		$(srcdir)/Stackless/Include/stackless_version.h \
		$(srcdir)/Stackless/Include/stackless_api.h \
		$(srcdir)/Stackless/core/cstack.h \
		$(srcdir)/Stackless/core/stackless_impl.h \
		$(srcdir)/Stackless/platf/switch.h
MODULE__PICKLE_DEPS+=	$(srcdir)/Stackless/Include/pycore_stackless.h


STACKLESS_OBJS= \
		Stackless/core/bomb.o \
		Stackless/core/channel.o \
		Stackless/core/cstack.o \
		Stackless/core/execstate.o \
		Stackless/core/latch.o \
		Stackless/core/runner.o \
		Stackless/core/pycall.o \
		Stackless/core/runqueue.o \
		Stackless/core/shims.o \
		Stackless/core/softcall.o \
		Stackless/core/softswitch.o \
		Stackless/core/stackdepth.o \
		Stackless/core/switch.o \
		Stackless/core/tasklet.o \
		Stackless/core/thread.o \
		Stackless/core/watchdog.o \
		Stackless/module/_stacklessmodule.o \
		Stackless/module/capi.o \
		Stackless/module/testhooks.o \
		Stackless/pickling/cframes.o \
		Stackless/pickling/frames.o \
		Stackless/pickling/generators.o \
		Stackless/pickling/tasklets.o \
		Stackless/pickling/verify.o \
		Stackless/platf/switch.o

# Out-of-tree builds: configure does not create our object directories.
# Py_BUILD_CORE_MODULE: Argument Clinic's code then makes its keyword
# names at run time instead of using the interpreter's static strings,
# whose table is generated from the upstream sources only.
Stackless/%.o: $(srcdir)/Stackless/%.c
	@mkdir -p $(@D)
	$(CC) -c $(PY_CORE_CFLAGS) -DPy_BUILD_CORE_MODULE -o $@ $<

Stackless/%.o: $(srcdir)/Stackless/%.S
	@mkdir -p $(@D)
	$(CC) -c $(PY_CORE_CFLAGS) -o $@ $<

Stackless/platf/switch.o: $(srcdir)/Stackless/platf/switch_x86_64_sysv.S \
		$(srcdir)/Stackless/platf/switch_aarch64_aapcs.S

$(STACKLESS_OBJS) Python/getversion.o Python/pystate.o Python/ceval_gil.o \
		Python/bltinmodule.o Python/context.o Objects/genobject.o \
		Objects/methodobject.o Objects/descrobject.o Objects/typeobject.o \
		Python/specialize.o Python/ceval.o: \
		$(STACKLESS_HEADERS)

# _teststackless: the test-only module of the C API (spec A-2), a shared
# module built, linked into the build directory and installed as
# _testcapi is, from the public headers only.
TESTSTACKLESS=	Modules/_teststackless$(EXT_SUFFIX)

Stackless/module/_teststackless.o: $(srcdir)/Stackless/module/_teststackless.c \
		$(STACKLESS_HEADERS) $(PYTHON_HEADERS)
	@mkdir -p $(@D)
	$(CC) -c $(PY_STDMODULE_CFLAGS) $(STACKLESS_INCLUDES) $(CCSHARED) -o $@ $<

$(TESTSTACKLESS): Stackless/module/_teststackless.o $(LIBRARY_DEPS)
	$(BLDSHARED) Stackless/module/_teststackless.o $(MODULE_LDFLAGS_SHARED) -o $@

.PHONY: stackless-sharedmods stackless-sharedinstall stackless-inclinstall
sharedmods: stackless-sharedmods
stackless-sharedmods: $(TESTSTACKLESS) pybuilddir.txt
	@target=`cat pybuilddir.txt`; $(MKDIR_P) $$target; \
	$(LN) -sf ../../$(TESTSTACKLESS) $$target/`basename $(TESTSTACKLESS)`

sharedinstall: stackless-sharedinstall
stackless-sharedinstall: $(TESTSTACKLESS)
	@if test "$(TEST_MODULES)" = yes; then \
		$(MKDIR_P) $(DESTDIR)$(DESTSHARED); \
		$(INSTALL_SHARED) $(TESTSTACKLESS) \
			$(DESTDIR)$(DESTSHARED)/`basename $(TESTSTACKLESS)`; \
	fi

# Our public headers go with Python's own: #include <stackless_api.h>.
inclinstall: stackless-inclinstall
stackless-inclinstall:
	$(MKDIR_P) $(DESTDIR)$(INCLUDEPY)
	$(INSTALL_DATA) $(srcdir)/Stackless/Include/stackless_api.h \
		$(srcdir)/Stackless/Include/stackless_version.h \
		$(DESTDIR)$(INCLUDEPY)

# Argument Clinic for our files; its output is committed, as CPython's is.
.PHONY: stackless-clinic
stackless-clinic:
	$(PYTHON_FOR_REGEN) $(srcdir)/Tools/clinic/clinic.py --make --srcdir $(srcdir)/Stackless

# This file is included before the upstream Makefile names its first
# target: leave the choice of the default goal (`all`) to it.
.DEFAULT_GOAL :=
