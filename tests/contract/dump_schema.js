// Prints the official client's shipped Endpoint schemas as JSON (read at test time, never stored).
// argv[2]: the installed package's folder.
"use strict";
const path = require("path");
const schemas = require(path.join(process.argv[2], "build/shared/interfaces/resources/IEndpoint.js"));
process.stdout.write(
  JSON.stringify({ endpointSchema: schemas.endpointSchema, endpointDataSchema: schemas.endpointDataSchema }) + "\n",
);
