/*
 * The release of Wirehub, one number for the module and wirehubd: they
 * are built from one tree and packaged together (debian/changelog).
 */

#ifndef WH_VERSION_H
#define WH_VERSION_H

#define WH_VERSION  "0.1.0"

#endif /* WH_VERSION_H */
