// Keyboard and screen-reader fixes the theme does not make (axe audit, tests/test_browser.py).
// A code block or table that scrolls sideways gets a tab stop, so that the
// keyboard can reach and scroll it; the search dialog gets a name.
function markScrollableRegions() {
  for (const region of document.querySelectorAll(".md-typeset pre > code, .md-typeset__scrollwrap")) {
    if (region.scrollWidth > region.clientWidth) {
      region.setAttribute("tabindex", "0");
    }
  }
  const search = document.querySelector(".md-search[role='dialog']");
  if (search && !search.hasAttribute("aria-label")) {
    search.setAttribute("aria-label", "Search");
  }
}

// Material's document$ fires once the page's components (tables wrapped for
// scrolling among them) are in place.
if (window.document$) {
  window.document$.subscribe(markScrollableRegions);
} else {
  document.addEventListener("DOMContentLoaded", markScrollableRegions);
}
window.addEventListener("resize", markScrollableRegions);
