#include "catalog/calendar.hpp"

#include <algorithm>

namespace simcap::billing {

unix_seconds anniversary_in(int year, unsigned month, unsigned day) noexcept {
  unsigned d = std::min(day, days_in_month(year, month));
  return days_from_civil({year, month, d}) * kSecondsPerDay;
}

unix_seconds period_start_containing(unsigned day, unix_seconds t) noexcept {
  civil_date c = civil_of(t);
  unix_seconds this_month = anniversary_in(c.year, c.month, day);
  if (t >= this_month) return this_month;
  int y = c.month == 1 ? c.year - 1 : c.year;
  unsigned m = c.month == 1 ? 12 : c.month - 1;
  return anniversary_in(y, m, day);
}

unix_seconds next_period_start(unsigned day, unix_seconds start) noexcept {
  civil_date c = civil_of(start);
  int y = c.month == 12 ? c.year + 1 : c.year;
  unsigned m = c.month == 12 ? 1 : c.month + 1;
  return anniversary_in(y, m, day);
}

}  // namespace simcap::billing
