# dm-pmcache: top-level build and test entry points.
#   make / make module   build dm-pmcache/dm-pmcache.ko against KDIR
#   make deps            install everything builds and tests need (Debian 12, root)
#   make check           userspace tests, then the VM scenarios
#   make demo [KERNEL=]  boot a VM and show the cache working
#   make test-unit       userspace tests only
#   make test-vm [T=name] [KERNEL=6.1|6.12]
#   make test-systemd [KERNEL=]  the boot-time unit under systemd (not in check)
#   make bench [QUICK=1] [KERNEL=]  the fio suite against the peers (tests/fio/)
#   make tools           tools/pmcache-tool
#   make install [KDIR=] [DESTDIR=]  the module (for KDIR's kernel), the tools, the unit
#   make install-tools   the tools and the unit alone (the module from DKMS)
KDIR ?= /lib/modules/$(shell uname -r)/build
TOP := $(CURDIR)
BUILD := $(TOP)/build
KERNEL ?= 6.12
T ?=
ROUNDS ?=
QUICK ?=

SBINDIR ?= /usr/local/sbin
UNITDIR ?= /etc/systemd/system

.PHONY: all module modules install install-tools clean deps check demo test-unit test-vm test-systemd crashtest bench microbench sparse tools

all: module

module modules:
	$(MAKE) -C $(KDIR) M=$(TOP)/dm-pmcache modules

# The module into /lib/modules/<KDIR's release>/updates (depmod'ed: modprobe
# finds it), pmcache-tool and pmcache-assemble into SBINDIR, the boot unit
# into UNITDIR (enable it yourself), running them from SBINDIR. With /usr/local
# on a file system of its own, mounted after the unit runs: SBINDIR=/usr/sbin.
# install-tools: those last three alone (the module from DKMS).
install: module install-tools
	$(MAKE) -C $(KDIR) M=$(TOP)/dm-pmcache INSTALL_MOD_PATH=$(DESTDIR) modules_install
	depmod $(if $(DESTDIR),-b $(DESTDIR)) -a $(shell cat $(KDIR)/include/config/kernel.release)

install-tools: tools
	install -D -m 755 tools/pmcache-tool $(DESTDIR)$(SBINDIR)/pmcache-tool
	install -D -m 755 tools/pmcache-assemble $(DESTDIR)$(SBINDIR)/pmcache-assemble
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/sbin|$(SBINDIR)|g' tools/pmcache-assemble.service \
		> $(DESTDIR)$(UNITDIR)/pmcache-assemble.service
	chmod 644 $(DESTDIR)$(UNITDIR)/pmcache-assemble.service

# Build the module for one of the test kernels into build/module-<ver>/.
build/module-%/dm-pmcache.ko: FORCE
	@scripts/build-module $*

FORCE:

# sparse (endianness included) over every module source, against a test kernel.
sparse:
	@PMC_BUILD_DIR=$(BUILD)/sparse-$(KERNEL) scripts/build-module $(KERNEL) C=2 CF="-D__CHECK_ENDIAN__"

deps:
	@scripts/deps

# Offline tools (userspace): tools/pmcache-tool check|dump|rescue|wipe|repair|belongs.
tools:
	@$(MAKE) -s -C tools

test-unit:
	@$(MAKE) -s -C tests/unit run

test-vm:
	@scripts/run-vm-tests --kernel $(KERNEL) $(if $(T),--only $(T)) $(if $(ROUNDS),--rounds $(ROUNDS))

check:
	@scripts/check

demo:
	@scripts/demo --kernel $(KERNEL)

test-systemd:
	@scripts/test-systemd --kernel $(KERNEL)

crashtest:
	@$(MAKE) -s -C tests/unit crashtest

bench:
	@scripts/bench --kernel $(KERNEL) $(if $(QUICK),--quick)

microbench:
	@$(MAKE) -s -C tests/unit microbench

clean:
	-$(MAKE) -C $(KDIR) M=$(TOP)/dm-pmcache clean 2>/dev/null
	-$(MAKE) -s -C tests/unit clean
	-$(MAKE) -s -C tools clean
	rm -rf build/module-* build/initramfs-* build/vm build/systemd-test.*
