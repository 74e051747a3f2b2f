# Debian packages, included by the Makefile (-include packaging.mk).
#   make deb       build/deb/libnginx-mod-http-wirehub_*.deb, wirehubd_*.deb
#   make deb-next  the same source as the next version (the changelog gets
#                  an entry "VERSION+next1"), in build/deb-next/: what
#                  test-deb upgrades to
#   make test-deb  boots a fresh Debian machine (debootstrap, then
#                  systemd-nspawn -b) and there installs the packages,
#                  runs both units, a WebSocket and wirehubctl stats,
#                  upgrades to deb-next, removes and purges
#                  (packaging/test-deb.sh)
# dpkg-buildpackage writes its results next to the source tree, so it works
# on a copy and the work tree stays clean.

DEB_OUT      := $(CURDIR)/build/deb
DEB_NEXT_OUT := $(CURDIR)/build/deb-next
DEB_ROOTFS   := $(CURDIR)/build/images/bookworm.tar

.PHONY: deb deb-next test-deb

# $(call deb_build,OUT-DIR,BUMP): BUMP non-empty adds the changelog entry
define deb_build
	@./packaging/deb-deps.sh
	rm -rf $(1)
	mkdir -p $(1)/wirehub
	tar -C $(CURDIR) --exclude=./build --exclude=./.git \
	    --exclude=./t/web/node_modules --exclude=./t/artifacts \
	    --exclude=__pycache__ -cf - . | tar -C $(1)/wirehub -xf -
	$(if $(2),./packaging/bump-version.sh $(1)/wirehub/debian/changelog)
	cd $(1)/wirehub && dpkg-buildpackage -b -us -uc \
	    > $(1)/build.log 2>&1 || \
	    { tail -40 $(1)/build.log; exit 1; }
	@ls -1 $(1)/*.deb
endef

deb:
	$(call deb_build,$(DEB_OUT),)

deb-next:
	$(call deb_build,$(DEB_NEXT_OUT),next)

$(DEB_ROOTFS):
	./packaging/rootfs.sh $@

test-deb: deb deb-next $(DEB_ROOTFS)
	./packaging/test-deb.sh $(DEB_OUT) $(DEB_NEXT_OUT) $(DEB_ROOTFS)

# Containers: docker/Dockerfile.nginx, docker/Dockerfile.wirehubd and
# docker/compose.yaml, built and run with podman and podman-compose on a
# base image made here with debootstrap (docker/test-docker.sh says why).
.PHONY: test-docker

test-docker: $(DEB_ROOTFS)
	./docker/test-docker.sh $(DEB_ROOTFS)
