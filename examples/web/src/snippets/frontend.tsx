// The component of docs/FRONTEND.md, verbatim but for the import path (the document imports from
// ./api): the build type-checks it, and tests/ts/react.test.ts checks that the document shows it.
import { useState } from "react";
import type { FormEvent } from "react";
import { MizanError } from "../api";
import { useUpdateProfile, useUser } from "../api/react";

/** One user's card: the `user` bundle (profile and orders, one request) and a rename form. */
export function UserCard({ userId }: { userId: number }) {
  const { data, error, status, isFetching, refetch } = useUser({ user_id: userId });
  const rename = useUpdateProfile();
  const [name, setName] = useState("");

  if (status === "pending") return <p>Loading…</p>;
  if (data === undefined) return <button onClick={() => refetch()}>Retry ({error?.message})</button>;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      // Resolves once the call's invalidations are applied: this card has refetched by then.
      await rename.mutateAsync({ user_id: userId, name });
      setName("");
    } catch (failure) {
      if (failure instanceof MizanError && failure.status === 401) window.location.assign("/login");
    }
  };
  return (
    <section aria-busy={isFetching}>
      <h2>{data.user_profile.name}</h2>
      <p>{data.user_orders.length} orders</p>
      <form onSubmit={submit}>
        <input value={name} onChange={(event) => setName(event.target.value)} />
        <button disabled={rename.status === "pending"}>Rename</button>
      </form>
      {rename.error && <p role="alert">{rename.error.code}: {rename.error.message}</p>}
    </section>
  );
}
