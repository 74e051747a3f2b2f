# Debian packages, included by the Makefile (-include packaging.mk).
#   make deb       build/deb/libnginx-mod-http-wirehub_*.deb, wirehubd_*.deb
#   make test-deb  builds them, installs them on this machine with dpkg,
#                  checks that the stock nginx loads the module, then
#                  removes and purges them and checks that nothing is left
# dpkg-buildpackage writes its results next to the source tree, so it works
# on a copy under build/deb/ and the work tree stays clean.

DEB_OUT := $(CURDIR)/build/deb
DEB_SRC := $(DEB_OUT)/wirehub

.PHONY: deb test-deb

deb:
	@./packaging/deb-deps.sh
	rm -rf $(DEB_OUT)
	mkdir -p $(DEB_SRC)
	tar -C $(CURDIR) --exclude=./build --exclude=./.git \
	    --exclude=./t/web/node_modules --exclude=./t/artifacts \
	    --exclude=__pycache__ -cf - . | tar -C $(DEB_SRC) -xf -
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc \
	    > $(DEB_OUT)/build.log 2>&1 || \
	    { tail -40 $(DEB_OUT)/build.log; exit 1; }
	@ls -1 $(DEB_OUT)/*.deb

test-deb: deb
	./packaging/test-deb.sh $(DEB_OUT)
