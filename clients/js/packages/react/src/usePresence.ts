import { useCallback, useEffect, useState } from "react";
import { type Json, type Member, type Subscription, SwitchboardClient } from "@switchboard/client";
import { type ClientSource, useResolvedClient } from "./context.js";

/** Options of {@link usePresence}. */
export interface UsePresenceOptions {
  /** The client (see {@link ClientSource}); default the {@link SwitchboardProvider}'s. */
  client?: ClientSource | null;
}

/** What this connection announces on a channel with {@link PresenceState.setPresence}. */
export interface PresenceAnnouncement {
  /** A short status, e.g. `"online"`, `"away"` (≤ 64 bytes). */
  status?: string;
  /** What the user is looking at, e.g. `"board"` (≤ 256 bytes); `null` for nothing. */
  currentFeature?: string | null;
  /** Any JSON object (≤ 4096 bytes); `null` for none. */
  meta?: { [key: string]: Json } | null;
}

/** Announces presence on the hook's channel; see {@link PresenceState.setPresence}. */
export type SetPresenceFunction = (presence: PresenceAnnouncement) => void;

/** What {@link usePresence} returns. */
export interface PresenceState {
  /**
   * The channel's members (connections subscribed there that announced presence, this one
   * included once it has), oldest first. Empty until the first list arrives and while the
   * client is not connected.
   */
  members: Member[];
  /** `members.length`. */
  count: number;
  /**
   * Announces this connection's presence on the channel, now and again after every reconnect
   * (the client keeps the announcement while the channel stays subscribed). Keeps its identity
   * while the client and channel are the same.
   */
  setPresence: SetPresenceFunction;
  /** Why there is no member list: an invalid channel name (`TypeError`); else `null`. */
  error: Error | null;
}

interface Tracked {
  client: SwitchboardClient;
  channel: string;
  members: Member[];
  error: Error | null;
}

const NO_MEMBERS: Member[] = [];

/**
 * The live member list of `channel`. The channel is subscribed while the component is mounted
 * (sharing the subscription with {@link useChannel} and other components), because presence
 * updates reach subscribers only; the list is fetched whenever the subscription is (re)made and
 * then kept current by joins, leaves and updates.
 *
 * ```tsx
 * const { members, count, setPresence } = usePresence("doc:42");
 * useEffect(() => setPresence({ status: "online", currentFeature: "editor" }), [setPresence]);
 * ```
 */
export function usePresence(channel: string, options: UsePresenceOptions = {}): PresenceState {
  const client = useResolvedClient(options.client, "usePresence");
  const [tracked, setTracked] = useState<Tracked | null>(null);

  useEffect(() => {
    let handle: Subscription;
    try {
      handle = client.subscribe(channel);
    } catch (error) {
      setTracked({ client, channel, members: NO_MEMBERS, error: error instanceof Error ? error : new Error(String(error)) });
      return undefined;
    }
    const stop = client.watchPresence(channel, (members) => setTracked({ client, channel, members, error: null }));
    return () => {
      stop();
      handle.unsubscribe();
    };
  }, [client, channel]);

  const setPresence = useCallback<SetPresenceFunction>(
    (presence) => client.setPresence({ ...presence, channel }),
    [client, channel],
  );
  const mine = tracked && tracked.client === client && tracked.channel === channel ? tracked : null;
  const members = mine?.members ?? NO_MEMBERS;
  return { members, count: members.length, setPresence, error: mine?.error ?? null };
}
