/* core/base/version.c */
#include "base/internal.h"
#include "simmim/version.h"

const char *sm_version(void) { return SM_VERSION_STRING; }
