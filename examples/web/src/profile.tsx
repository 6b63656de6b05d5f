// The client of the demo's server-rendered profile page (`/profile/{id}/`): it hydrates the markup
// the SSR worker rendered, from the `user` bundle the page carries in its props island, so the
// store starts with that bundle and sends no request. A rename then goes through the generated
// hooks: the mutation's answer invalidates the instance, the store refetches it, and the page
// updates in place, without a reload. Without JavaScript the same form posts to the view route.
import { StrictMode, useEffect, useState } from "react";
import type { FormEvent } from "react";
import { createRoot, hydrateRoot } from "react-dom/client";

import { configure } from "./api";
import type { Order, Profile } from "./api";
import { MizanProvider, useUpdateProfile, useUser } from "./api/react";
import { MizanStore } from "./api/store";

/** What the page's props island holds. */
interface PageProps {
  user_profile: Profile;
  user_orders: Order[];
  csrf?: string;
}

/** The same markup as the SSR worker's `ProfilePage`, so hydration matches it. */
function ProfilePage({ props }: { props: PageProps }) {
  const userId = props.user_profile.id;
  const user = useUser({ user_id: userId });
  const rename = useUpdateProfile();
  const profile = user.data?.user_profile ?? props.user_profile;
  const [draft, setDraft] = useState(profile.name);
  // Marks the page interactive (what a test, or a stylesheet, can wait on).
  useEffect(() => {
    document.body.dataset.hydrated = "true";
  }, []);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    rename.mutate({ user_id: userId, name: draft });
  };
  return (
    <main>
      <h1>{profile.name}</h1>
      <p>{profile.email}</p>
      <form method="post" action={`/profile/${userId}/update/`} onSubmit={submit}>
        {props.csrf ? <input type="hidden" name="csrfmiddlewaretoken" value={props.csrf} /> : null}
        <input name="name" value={draft} onChange={(event) => setDraft(event.target.value)} />
        <button>Rename</button>
      </form>
    </main>
  );
}

// Same origin; a logged-in browser authenticates by its cookies, so the client fetches the
// CSRF token from `session/` and sends it with the rename.
configure({ baseUrl: "", credentials: "same-origin" });

const root = document.getElementById("root");
const island = document.getElementById("mizan-props");
if (root === null || island === null) throw new Error("not a Mizan page: no #root or #mizan-props");
const props = JSON.parse(island.textContent ?? "null") as PageProps;
const { csrf: _csrf, ...bundle } = props;
const store = new MizanStore({
  initialData: [{ context: "user", params: { user_id: props.user_profile.id }, data: bundle }],
});
const app = (
  <StrictMode>
    <MizanProvider store={store}>
      <ProfilePage props={props} />
    </MizanProvider>
  </StrictMode>
);
// `server`: the markup is there to hydrate; `client`: SSR was off or failed, render it.
if (root.dataset.mizanRender === "server") hydrateRoot(root, app);
else createRoot(root).render(app);
