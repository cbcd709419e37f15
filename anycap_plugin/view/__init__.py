"""`anycap view`: captions beside their media, two runs side by side, evaluations item by item,
in the browser. A local Starlette app (`app`) over runs indexed in the background (`index`); the
page is one static file; `export` writes it with the data inlined."""
