#include "../../bpf/vnic.shared.h"
