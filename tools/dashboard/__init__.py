"""``pipeline dashboard``: the read API's charts on a local web page (server, page, vendored Chart.js)."""
