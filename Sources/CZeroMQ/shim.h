#ifndef CARERELAY_CZEROMQ_SHIM_H
#define CARERELAY_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
