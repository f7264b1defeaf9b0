/* core/base/status.c - status code names and messages, generated from SM_STATUS_MAP. */
#include "base/internal.h"

const char *sm_status_str(int status)
{
    switch (status) {
#define SM__CASE(name, value, text) case value: return text;
        SM_STATUS_MAP(SM__CASE)
#undef SM__CASE
    }
    return "unknown status";
}

const char *sm_status_name(int status)
{
    switch (status) {
#define SM__CASE(name, value, text) case value: return #name;
        SM_STATUS_MAP(SM__CASE)
#undef SM__CASE
    }
    return "EUNKNOWN";
}
