// Drives the official @cognigy/rest-api-client against the simulator's endpoints dialect (ours, not
// Cognigy's code). Input: env COGWH_CLIENT_DIR (the installed package's folder), COGWH_BASE_URL,
// COGWH_API_KEY, COGWH_PROJECT_ID, COGWH_WEBHOOK_URL, COGWH_BASIC_PASSWORD; NODE_EXTRA_CA_CERTS for TLS.
// Output: one JSON object on stdout, {steps: {<name>: {ok, value | error}}}. Never prints the key.
"use strict";

const { RestAPIClient } = require(process.env.COGWH_CLIENT_DIR);

function describeError(err) {
  return {
    name: err && err.name,
    code: err && err.code,
    httpStatusCode: err && err.httpStatusCode,
    message: err && err.message,
    traceId: err && err.loggerstack && err.loggerstack.traceId,
    details: err && err.details,
  };
}

async function step(steps, name, fn) {
  try {
    const value = await fn();
    steps[name] = { ok: true, value: value === undefined ? null : value };
    return value;
  } catch (err) {
    steps[name] = { ok: false, error: describeError(err) };
    return undefined;
  }
}

async function main() {
  const client = new RestAPIClient({ baseUrl: process.env.COGWH_BASE_URL, maxRetries: 0 });
  client.setCredentials({ type: "ApiKey", apiKey: process.env.COGWH_API_KEY });
  const projectId = process.env.COGWH_PROJECT_ID;
  const steps = {};

  const created = await step(steps, "create", () =>
    client.createEndpoint({
      projectId,
      name: "orders-webhook",
      channel: "webhook",
      flowId: "",
      localeId: "",
      active: true,
      settings: {
        webhookUrl: process.env.COGWH_WEBHOOK_URL,
        basicAuthUser: "cognigy",
        basicAuthPassword: process.env.COGWH_BASIC_PASSWORD,
      },
    }),
  );
  await step(steps, "createSameName", () =>
    client.createEndpoint({ projectId, name: "orders-webhook", channel: "webhook" }),
  );
  await step(steps, "index", () =>
    client.indexEndpoints({ projectId, filter: "orders", limit: 1, skip: 0, sort: { name: "asc" } }),
  );
  const id = created && created._id;
  await step(steps, "read", () => client.readEndpoint({ endpointId: id }));
  await step(steps, "update", () =>
    client.updateEndpoint({
      endpointId: id,
      name: "orders-webhook-renamed",
      settings: { webhookUrl: process.env.COGWH_WEBHOOK_URL + "/v2" },
    }),
  );
  await step(steps, "readAfterUpdate", () => client.readEndpoint({ endpointId: id }));
  await step(steps, "delete", () => client.deleteEndpoint({ endpointId: id }));
  await step(steps, "readAfterDelete", () => client.readEndpoint({ endpointId: id }));
  await step(steps, "createUnknownField", () =>
    client.createEndpoint({ projectId, name: "bad", retryPolicy: { maxRetries: 3 } }),
  );
  await step(steps, "createUnknownProject", () =>
    client.createEndpoint({ projectId: "ffffffffffffffffffffffff", name: "nowhere" }),
  );
  await step(steps, "indexLimitTooLarge", () => client.indexEndpoints({ projectId, limit: 101 }));
  process.stdout.write(JSON.stringify({ steps }) + "\n");
}

main().catch((err) => {
  process.stderr.write("official_client.js failed: " + (err && err.stack ? err.stack : String(err)) + "\n");
  process.exit(2);
});
