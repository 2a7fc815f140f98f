import { createHmac } from "node:crypto";

/** An HS256 JWT for `claims`, signed with `secret` (what the server's AUTH_JWT_SECRET verifies). */
export function signJwt(secret: string, claims: { [key: string]: unknown }): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}
