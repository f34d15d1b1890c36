// Cairo (Debian libcairo2-dev): 2D drawing to PNG for training reports.
#ifndef ZOO_CCAIRO_SHIM_H
#define ZOO_CCAIRO_SHIM_H

#include <cairo/cairo.h>

#endif
