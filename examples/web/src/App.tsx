// A profile page (user 1 or 2) with a rename form, and the catalog with an add-item form, over
// the hooks generated from the demo. Nothing here refetches by hand: a call's answer says what
// it invalidated, and exactly the components reading those instances refetch. Opened with
// `?transport=ws`, the same components also follow the changes other tabs and clients make:
// the server pushes them over the socket.
import { useState } from "react";
import type { FormEvent } from "react";

import type { MizanError } from "./api";
import {
  useAddItem,
  useCatalogItems,
  useSecret,
  useUpdateProfile,
  useUserOrders,
  useUserProfile,
} from "./api/react";
import { useSocketStatus } from "./live";

export function App() {
  const [userId, setUserId] = useState(1);
  return (
    <main>
      <h1>Mizan example</h1>
      <Transport />
      <nav>
        {[1, 2].map((id) => (
          <button key={id} type="button" aria-pressed={id === userId} onClick={() => setUserId(id)}>
            User {id}
          </button>
        ))}
      </nav>
      <Profile userId={userId} />
      <Orders userId={userId} />
      <RenameForm userId={userId} />
      <Catalog />
      <AddItemForm />
      <Secret />
    </main>
  );
}

/** Over HTTP, or live over the socket (and whether it is connected). */
function Transport() {
  const status = useSocketStatus();
  return (
    <p data-testid="transport">
      {status === null ? "Over HTTP (open with ?transport=ws for live updates)" : `Live over the socket: ${status}`}
    </p>
  );
}

function ErrorMessage({ error }: { error: MizanError | null }) {
  if (error === null) return null;
  return (
    <p role="alert" data-testid="error">
      {error.name} {error.status} {error.code}: {error.message}
    </p>
  );
}

function Profile({ userId }: { userId: number }) {
  const { data, error, isFetching } = useUserProfile({ user_id: userId });
  if (data === undefined) return error ? <ErrorMessage error={error} /> : <p>Loading the profile…</p>;
  return (
    <section data-testid="profile" aria-busy={isFetching}>
      <h2>{data.name}</h2>
      <p>{data.email}</p>
      <ErrorMessage error={error} />
    </section>
  );
}

function Orders({ userId }: { userId: number }) {
  const { data } = useUserOrders({ user_id: userId });
  return <p data-testid="orders">{data ? `${data.length} orders` : "…"}</p>;
}

function RenameForm({ userId }: { userId: number }) {
  const rename = useUpdateProfile();
  const [name, setName] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    rename.mutate({ user_id: userId, name });
  };
  return (
    <form onSubmit={submit} data-testid="rename">
      <input aria-label="New name" value={name} onChange={(event) => setName(event.target.value)} />
      <button type="submit" disabled={rename.status === "pending"}>
        Rename
      </button>
      {rename.status === "success" && <span data-testid="renamed">Renamed to {rename.data?.name}</span>}
      <ErrorMessage error={rename.error} />
    </form>
  );
}

function Catalog() {
  const { data, error } = useCatalogItems();
  if (data === undefined) return error ? <ErrorMessage error={error} /> : <p>Loading the catalog…</p>;
  return (
    <ul data-testid="catalog">
      {data.map((item) => (
        <li key={item.id}>{item.name}</li>
      ))}
    </ul>
  );
}

function AddItemForm() {
  const addItem = useAddItem();
  const [name, setName] = useState("");
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    await addItem.mutateAsync({ name }).catch(() => {}); // the error shows below
    setName("");
  };
  return (
    <form onSubmit={submit} data-testid="add-item">
      <input aria-label="Item name" value={name} onChange={(event) => setName(event.target.value)} />
      <button type="submit">Add</button>
      {addItem.status === "success" && <span data-testid="added">Added {addItem.data?.name}</span>}
      <ErrorMessage error={addItem.error} />
    </form>
  );
}

/** `secret` needs a logged-in caller: anonymously it fails with a 401 `MizanError`. */
function Secret() {
  const secret = useSecret();
  return (
    <section data-testid="secret">
      <button type="button" onClick={() => secret.mutate()}>
        Read the secret
      </button>
      <ErrorMessage error={secret.error} />
    </section>
  );
}
