"""Tables and figures for the pages."""
