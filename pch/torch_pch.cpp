// Anchor translation unit for the shared precompiled header (see torch_pch.h).
#include "pch/torch_pch.h"
