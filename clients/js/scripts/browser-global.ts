// The entry of the browser bundle the server serves at /client.js: the package's API on
// `window.Switchboard`, and the client class also as `window.SwitchboardClient`.
import * as Switchboard from "../packages/client/src/index.js";

const target = globalThis as unknown as {
  Switchboard: typeof Switchboard;
  SwitchboardClient: typeof Switchboard.SwitchboardClient;
};
target.Switchboard = Switchboard;
target.SwitchboardClient = Switchboard.SwitchboardClient;
