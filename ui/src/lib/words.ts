// Core's remedies, in the window's words (core's messages name no command-line flags).
import type { Problem } from "../backend/backend";

export function remedyWords(problem: Problem): string | null {
  switch (problem.remedy) {
    case "sign_in":
      return "Sign in again: Postern will ask for a code.";
    case "sign_in_again":
      return "Sign in again.";
    case "store_keys":
      return "Add this profile's access keys (they go to your keychain).";
    case "replace_keys":
      return "The stored keys are wrong or deactivated: add new ones.";
    case "check_device":
      return "Check that the code comes from the right MFA device and that its clock is right.";
    case "choose_profile":
      return "Choose an identity.";
    case "choose_region":
      return "Choose a region.";
    case "check_instance":
      return "Start the instance or bring its SSM Agent online; ask its owner if you cannot.";
    case "ask_for_access":
      return "Ask your AWS administrator for the permission, or switch to a role that has it.";
    case "check_clock":
      return "Check this computer's clock.";
    case "renew_credentials":
      return "Get fresh credentials where these came from.";
    case "unlock_keychain":
      return "Unlock your keychain (or install one: GNOME Keyring, KWallet).";
    case "fix_file":
      return "Fix the file named above, then come back: Postern reads it again.";
    case "check_network":
      return "Check the network (and any proxy or VPN), then try again.";
    case "try_again":
      return "Try again in a moment.";
    case "list_instances":
      return "Look it up in the instance list.";
    case "remove_keychain_entry":
      return "Remove that keychain entry: Postern did not write it.";
    default:
      return null;
  }
}

/** "11:42 left" (hours:minutes), or "ended". */
export function timeLeft(until: number, now: number): string {
  const seconds = until - now;
  if (seconds <= 0) return "ended";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min left`;
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")} left`;
}
