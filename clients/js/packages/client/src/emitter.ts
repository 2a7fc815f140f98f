/** A listener registry keyed by event name, with typed payloads. */
export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  readonly #listeners = new Map<keyof Events, Set<(data: never) => void>>();

  /** Calls `fn` with every `event` from now on; returns a function that stops it. */
  on<K extends keyof Events>(event: K, fn: (data: Events[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    const listener = fn as (data: never) => void;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Calls every listener of `event`; a listener that throws does not stop the others. */
  emit<K extends keyof Events>(event: K, data: Events[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as (data: Events[K]) => void)(data);
      } catch (error) {
        // Reported, never swallowed, and never able to break the client's own state.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
