#pragma once
// Billing calendar (SPEC §4): a product's periods start at 00:00 UTC on its anniversary day D,
// clamped to the length of each month (D = 30: Jan 30, Feb 28/29, Mar 30).
#include "simcap/time.hpp"

namespace simcap::billing {

// 00:00 UTC of day min(D, days in month) of the given month.
unix_seconds anniversary_in(int year, unsigned month, unsigned day) noexcept;
// Start of the period that contains t.
unix_seconds period_start_containing(unsigned day, unix_seconds t) noexcept;
// Start of the period after the one starting at `start`.
unix_seconds next_period_start(unsigned day, unix_seconds start) noexcept;

}  // namespace simcap::billing
