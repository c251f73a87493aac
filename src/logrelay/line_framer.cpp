// LineFramer is a header-only template (its callbacks inline into the relay loop); this unit checks that
// the header stands alone.
#include "logrelay/line_framer.hpp"
