/**
 * Joining: this tab's participant identity, the server's API key (kept for this tab only), and
 * the join token from the token server, with a person-readable error for every refusal.
 */

const IDENTITY_STORE = "talking-avatar-identity";
const API_KEY_STORE = "talking-avatar-api-key";

/** This tab's identity: a slug of the name plus a random suffix, kept across rejoins. */
export function identityFor(name) {
  let id = sessionStorage.getItem(IDENTITY_STORE);
  if (!id) {
    const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "guest";
    id = `${slug}-${Math.random().toString(36).slice(2, 8)}`;
    sessionStorage.setItem(IDENTITY_STORE, id);
  }
  return id;
}

/** Keep the server's API key (AVATAR_API_KEY) the person entered, for this tab only. */
export function saveApiKey(key) {
  if (key) sessionStorage.setItem(API_KEY_STORE, key);
}

function apiHeaders() {
  const key = sessionStorage.getItem(API_KEY_STORE);
  return { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) };
}

/**
 * POST {room, identity, name} to `tokenUrl` → {url, token}. Errors carry a message for the person
 * and `retry: true` when trying again may help (`retryAfterS` when the server said how long to
 * wait: a rate limit); a 401 forgets the stored key and calls
 * `onKeyNeeded` so the page can ask for one.
 */
export async function fetchToken(tokenUrl, room, name, { onKeyNeeded }) {
  let res;
  try {
    res = await fetch(tokenUrl, {
      method: "POST",
      headers: apiHeaders(),
      body: JSON.stringify({ room, identity: identityFor(name), name }),
    });
  } catch (e) {
    throw Object.assign(new Error("Cannot reach the avatar server. Check your connection and try again."), { retry: true });
  }
  if (res.ok) return res.json();
  let reason = "";
  try {
    const body = await res.json();
    reason = body.detail ?? body.error ?? body.message ?? "";
  } catch {
    reason = await res.text().catch(() => "");
  }
  if (res.status === 401) {
    sessionStorage.removeItem(API_KEY_STORE);
    onKeyNeeded();
    throw new Error("This avatar server needs an access key: enter it and join again.");
  }
  if (res.status === 429) {
    // Retry-After in seconds: the page joins again by itself once it has passed.
    const wait = Number.parseInt(res.headers.get("Retry-After") ?? "", 10);
    if (wait > 0) {
      throw Object.assign(new Error(`Too many joins from here; joining again in ${wait} s.`),
        { retry: true, retryAfterS: wait });
    }
    throw Object.assign(new Error("Too many joins from here; please wait a little and try again."), { retry: true });
  }
  if (res.status === 503) {
    throw Object.assign(new Error("The avatar server is full right now — every avatar is busy. Please try again in a minute."),
      { retry: true });
  }
  if (res.status >= 400 && res.status < 500) throw new Error(`The server refused to join: ${reason || res.statusText}`);
  throw Object.assign(new Error(`The avatar server had a problem (${res.status}). Please try again.`), { retry: true });
}
