// Keyboard and screen-reader fixes the theme does not make (axe audit, tests/test_browser.py).
// An element of the page's content that scrolls sideways (a code block, a
// table, a notebook cell) gets a tab stop, so that the keyboard can reach and
// scroll it; the search dialog gets a name.
function markScrollableRegions() {
  for (const element of document.querySelectorAll(".md-content *")) {
    const overflow = getComputedStyle(element).overflowX;
    if ((overflow === "auto" || overflow === "scroll") && element.scrollWidth > element.clientWidth) {
      element.setAttribute("tabindex", "0");
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
