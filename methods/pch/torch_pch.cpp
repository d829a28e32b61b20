// Anchor translation unit for the shared precompiled header (see torch_pch.h).
#include "methods/pch/torch_pch.h"
