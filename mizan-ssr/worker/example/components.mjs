// Example components for the mizan-ssr worker, written without JSX so that they run without a
// build step. `ProfilePage` is the reference app's profile page; `Greeting` is the small
// component of the benchmark.
import { createElement as h, useState } from 'react';

/**
 * A user's profile with a rename form that also works without JavaScript (a plain POST); a
 * cookie session's CSRF token (`csrf`) travels in the form's hidden field. The props are the
 * profile itself, or the `user` bundle (`{ user_profile, ... }`) the reference app's page carries.
 */
export function ProfilePage(props) {
  const { id, name, email } = props.user_profile ?? props;
  const { csrf } = props;
  const [draft, setDraft] = useState(name);
  return h(
    'main',
    null,
    h('h1', null, name),
    h('p', null, email),
    h(
      'form',
      { method: 'post', action: `/profile/${id}/update/` },
      csrf ? h('input', { type: 'hidden', name: 'csrfmiddlewaretoken', value: csrf }) : null,
      h('input', { name: 'name', value: draft, onChange: (event) => setDraft(event.target.value) }),
      h('button', null, 'Rename'),
    ),
  );
}

/** A small component: a heading and a list of three items. */
export function Greeting({ name, items = [] }) {
  return h(
    'section',
    null,
    h('h2', null, `Hello, ${name}!`),
    h('ul', null, items.map((item) => h('li', { key: item }, item))),
  );
}

/** Always throws, to show how a render error reaches the pool. */
export function Broken() {
  throw new Error('Broken always throws');
}
