// Swagger UI for /api/docs (templates/admin/api_docs.html), started from a file: the
// page's Content-Security-Policy runs no inline script.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json", dom_id: "#swagger-ui", layout: "BaseLayout",
  deepLinking: true, showExtensions: true, showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
