"""Looking at signed distance fields: slice images, offscreen renders, previews, the browser viewer."""
