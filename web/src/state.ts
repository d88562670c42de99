/** What every screen shares: the signed-in user, the player, and the page's message line. */
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { User } from "./api/client";
import type { Player } from "./player";

export interface Shared {
  user: User;
  player: Player;
  isAdmin: boolean;
  /** Show a message in the page's status line (errors included). */
  notify: (message: string) => void;
  /** Re-read the user (after a subscription or role change). */
  refreshUser: () => Promise<void>;
  /** Leave the signed-in app with a notice (the session is already gone: an account deleted). */
  endSession: (notice: string) => void;
}

export const SharedContext = createContext<Shared | null>(null);

export function useShared(): Shared {
  const shared = useContext(SharedContext);
  if (!shared) throw new Error("useShared outside the signed-in app");
  return shared;
}
