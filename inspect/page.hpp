// The inspection page: one HTML file (inspect/page.html, its script and style inline, no external
// assets), compiled into the binary so that there is nothing to install or find at run time.
#pragma once

#include <string>

namespace pedagogy::actors {

const std::string& inspection_page();

} // namespace pedagogy::actors
