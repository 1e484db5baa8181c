// The bounded driver's hook (driver.cpp): a target with a generator of its own defines it.
#pragma once

#include <string>
#include <vector>

// Called by the bounded driver after the replay, in place of its mutation loop, with the
// iteration count and the inputs it replayed. Weak: most targets do not define it.
[[gnu::weak]] void fuzz_bounded_run(long iterations, const std::vector<std::string>& inputs);
