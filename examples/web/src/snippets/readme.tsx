// The component of README.md, verbatim but for the import path (the document imports from
// ./api): the build type-checks it, and tests/ts/react.test.ts checks that the document shows it.
import { MizanProvider, useUpdateProfile, useUserProfile } from "../api/react";

function Profile({ userId }: { userId: number }) {
  const { data, error, status } = useUserProfile({ user_id: userId });
  const rename = useUpdateProfile();
  if (status === "pending") return <p>Loading…</p>;
  if (error) return <p>{error.code}: {error.message}</p>;
  return (
    <button onClick={() => rename.mutate({ user_id: userId, name: "Alicia" })}>
      {data?.name} (rename)
    </button>
  );
}

export const App = () => <MizanProvider><Profile userId={1} /></MizanProvider>;
