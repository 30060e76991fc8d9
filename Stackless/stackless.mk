# Stackless: the build of our own C code, included by the interpreter's
# Makefile.pre.in (patch build-stackless-core.patch).  Everything under
# Stackless/ is listed here; the upstream Makefile only names
# $(STACKLESS_OBJS) among the core objects.

STACKLESS_INCLUDES=	-I$(srcdir)/Stackless/Include

# Our headers are needed by the hooks in upstream files as well.
PY_CORE_CFLAGS+=	$(STACKLESS_INCLUDES)

STACKLESS_HEADERS= \
		$(srcdir)/Stackless/Include/stackless_version.h

STACKLESS_OBJS= \
		Stackless/module/_stacklessmodule.o

# Out-of-tree builds: configure does not create our object directories.
Stackless/%.o: $(srcdir)/Stackless/%.c
	@mkdir -p $(@D)
	$(CC) -c $(PY_CORE_CFLAGS) -o $@ $<

$(STACKLESS_OBJS) Python/getversion.o: $(STACKLESS_HEADERS)

# This file is included before the upstream Makefile names its first
# target: leave the choice of the default goal (`all`) to it.
.DEFAULT_GOAL :=
