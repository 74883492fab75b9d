#ifndef THINGDATA_CRESOLV_SHIM_H
#define THINGDATA_CRESOLV_SHIM_H
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <netdb.h>
#endif
