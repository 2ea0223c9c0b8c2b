/// The bridge's pages, as Mustache templates. Plain server-rendered HTML: every page reads and
/// every form submits without JavaScript; the one script only adds live updates.
enum Templates {
    static let all: [String: String] = [
        "layout": layout, "signIn": signIn, "home": home, "person": person, "checkIn": checkIn,
        "checkInSent": checkInSent, "checkIns": checkIns, "problem": problem, "liveUpdate": liveUpdate,
        "onCall": onCall,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en-GB">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} - CareRelay for carers</title>
        <link rel="stylesheet" href="/static/bridge.css">
        {{#live}}<script src="/static/live.js" defer></script>{{/live}}
        </head>
        <body>
        <a class="skip" href="#main">Skip to main content</a>
        <header class="top">
          <div class="wrap bar">
            <p class="brand"><a href="/">CareRelay for carers</a></p>
            {{#signedIn}}
            <form method="post" action="/sign-out" class="signout">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <button type="submit" class="quiet">Sign out</button>
            </form>
            {{/signedIn}}
          </div>
        </header>
        <main id="main" class="wrap" tabindex="-1">
        {{{content}}}
        </main>
        <footer class="wrap foot">
          <p>In an emergency, call 999. For urgent medical help that is not an emergency, call NHS 111.</p>
        </footer>
        </body>
        </html>
        """

    /// Each link's `target` is the id of a control, never of a fieldset: following a link
    /// moves focus only to an element that can take it.
    static let errorSummary = """
        {{#hasErrors}}
        <div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1">
          <h2 id="error-summary-title">There is a problem</h2>
          <ul>
          {{#errorList}}<li><a href="#{{target}}">{{message}}</a></li>{{/errorList}}
          </ul>
        </div>
        {{/hasErrors}}
        """

    static let signIn = """
        {{#signedOut}}<div class="notice" role="status"><p>You have signed out.</p></div>{{/signedOut}}
        \(errorSummary)
        <h1>Sign in with your invitation code</h1>
        <p>Your care co-ordinator gives you an invitation code. It works once, for a few days. After you sign in, this browser remembers you until you sign out.</p>
        <form method="post" action="/sign-in" novalidate>
          <input type="hidden" name="csrf" value="{{csrf}}">
          <div class="field{{#errors.code}} has-error{{/errors.code}}">
            <label for="code">Invitation code</label>
            <p class="hint" id="code-hint">12 letters and numbers, for example K7QM-4TXP-9WHD. Capitals, spaces and dashes do not matter.</p>
            {{#errors.code}}<p class="error" id="code-error"><span class="visually-hidden">Error:</span> {{errors.code}}</p>{{/errors.code}}
            <input id="code" name="code" type="text" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false"
              aria-describedby="code-hint{{#errors.code}} code-error{{/errors.code}}" {{#errors.code}}aria-invalid="true"{{/errors.code}} value="{{code}}">
          </div>
          <button type="submit">Sign in</button>
        </form>
        <p>No code, or it does not work? Ask your care co-ordinator for a new one.</p>
        """

    static let home = """
        <h1>The people you care for</h1>
        {{#hasPeople}}
        <ul class="people">
        {{#people}}
          <li><a href="/people/{{nhs}}"><span class="big">{{heading}}</span></a><br><span class="meta">NHS number {{nhsSpaced}}. {{latest}}</span></li>
        {{/people}}
        </ul>
        {{/hasPeople}}
        {{^hasPeople}}
        <p>Nothing has been shared with you yet. When the care team shares a care plan with you, it will be here.</p>
        {{/hasPeople}}
        """

    static let person = """
        <h1>{{heading}}</h1>
        <p class="meta">NHS number {{nhsSpaced}}</p>
        <p><a class="button" href="/people/{{nhs}}/check-in">Check in: tell the team how things are</a></p>
        <div id="updates" class="updates" aria-live="polite" data-events="/people/{{nhs}}/events?after={{after}}"></div>
        {{#viewingOld}}<div class="notice"><p>You are looking at version {{plan.version}}, not the latest. <a href="/people/{{nhs}}?plan={{plan.planID}}">Show the latest version</a>.</p></div>{{/viewingOld}}
        {{#revocations}}<div class="notice"><p><strong>Taken back on {{on}}:</strong> {{text}}</p></div>{{/revocations}}
        {{#plan}}
        <div data-message="{{message}}">
        <section aria-labelledby="plan-title">
          <h2 id="plan-title">Care plan: {{title}}</h2>
          <p class="meta">Version {{version}}, shared by {{sharedBy}} on {{sharedOn}}.{{#period}} It covers {{period}}.{{/period}}</p>
          {{#description}}<p>{{description}}</p>{{/description}}
          <p><strong>What changed:</strong> {{changeSummary}}</p>
          {{#sections}}
          <section class="plan-section" data-part="{{message}}/{{id}}" aria-labelledby="section-{{id}}">
            <h3 id="section-{{id}}">{{title}}</h3>{{#contingency}}<p><span class="tag">If things change</span></p>{{/contingency}}
            <p>{{text}}</p>
            {{#hasActivities}}
            <ul>
            {{#activities}}<li>{{description}}{{#schedule}}: {{schedule}}{{/schedule}}{{#who}} ({{who}}){{/who}}</li>{{/activities}}
            </ul>
            {{/hasActivities}}
          </section>
          {{/sections}}
        </section>
        <section aria-labelledby="contacts-title">
          <h2 id="contacts-title">Upcoming contacts</h2>
          {{#hasContacts}}
          <ul class="contacts">
          {{#contacts}}<li data-part="{{message}}/{{section}}"><strong>{{description}}</strong>{{#schedule}}<br>When: {{schedule}}{{/schedule}}{{#who}}<br>Who: {{who}}{{/who}}<br>Status: {{status}}</li>{{/contacts}}
          </ul>
          {{/hasContacts}}
          {{^hasContacts}}<p>No visits or calls are planned in this version.</p>{{/hasContacts}}
        </section>
        </div>
        {{/plan}}
        {{^plan}}
        <p>No care plan has been shared with you for this person yet. When one is, it will appear here{{#liveHint}} without reloading the page{{/liveHint}}.</p>
        {{/plan}}
        {{#hasHistory}}
        <section aria-labelledby="history-title">
          <h2 id="history-title">Earlier versions</h2>
          <ul class="history">
          {{#history}}<li data-message="{{message}}">{{#current}}Version {{version}} (shown above){{/current}}{{^current}}<a href="/people/{{nhs}}?plan={{planID}}&amp;version={{version}}">Version {{version}}</a>{{/current}}, {{sharedOn}}: {{changeSummary}}</li>{{/history}}
          </ul>
        </section>
        {{/hasHistory}}
        {{#hasOtherPlans}}
        <section aria-labelledby="other-plans-title">
          <h2 id="other-plans-title">Other care plans</h2>
          <ul class="history">
          {{#otherPlans}}<li data-message="{{message}}"><a href="/people/{{nhs}}?plan={{planID}}">{{title}}</a>, version {{version}}</li>{{/otherPlans}}
          </ul>
        </section>
        {{/hasOtherPlans}}
        {{#checkInText}}<p class="meta">{{checkInText}} <a href="/people/{{nhs}}/check-ins">See your check-ins and who has read them</a>.</p>{{/checkInText}}
        """

    static let checkIn = """
        <p><a href="/people/{{nhs}}">Back to the care plan</a></p>
        \(errorSummary)
        {{#sendProblem}}<div class="error-summary" role="alert"><h2>Your check-in was not sent</h2><p>{{sendProblem}}</p></div>{{/sendProblem}}
        <h1>Check in about {{name}}</h1>
        <p>Your answers go to {{coordinatorName}}, the care co-ordinator. Questions marked (optional) can be left empty.</p>
        <form method="post" action="/people/{{nhs}}/check-in" novalidate>
          <input type="hidden" name="csrf" value="{{csrf}}">
          <input type="hidden" name="key" value="{{key}}">

          <fieldset class="field{{#errors.patientScore}} has-error{{/errors.patientScore}}" id="patientScore" {{#errors.patientScore}}aria-describedby="patientScore-error"{{/errors.patientScore}}>
            <legend>How is {{name}} today?</legend>
            {{#errors.patientScore}}<p class="error" id="patientScore-error"><span class="visually-hidden">Error:</span> {{errors.patientScore}}</p>{{/errors.patientScore}}
            <div class="choices">
            {{#patientScores}}<div class="choice"><input type="radio" id="patientScore-{{value}}" name="patientScore" value="{{value}}"{{#checked}} checked{{/checked}}><label for="patientScore-{{value}}">{{label}}</label></div>{{/patientScores}}
            </div>
          </fieldset>

          <div class="field{{#errors.patientText}} has-error{{/errors.patientText}}">
            <label for="patientText">In your own words, how are they?</label>
            {{#errors.patientText}}<p class="error" id="patientText-error"><span class="visually-hidden">Error:</span> {{errors.patientText}}</p>{{/errors.patientText}}
            <textarea id="patientText" name="patientText" rows="4" {{#errors.patientText}}aria-invalid="true" aria-describedby="patientText-error"{{/errors.patientText}}>{{patientText}}</textarea>
          </div>

          <fieldset class="field{{#errors.wellbeing}} has-error{{/errors.wellbeing}}" id="wellbeing" {{#errors.wellbeing}}aria-describedby="wellbeing-error"{{/errors.wellbeing}}>
            <legend>How are you?</legend>
            {{#errors.wellbeing}}<p class="error" id="wellbeing-error"><span class="visually-hidden">Error:</span> {{errors.wellbeing}}</p>{{/errors.wellbeing}}
            <div class="choices">
            {{#wellbeings}}<div class="choice"><input type="radio" id="wellbeing-{{value}}" name="wellbeing" value="{{value}}"{{#checked}} checked{{/checked}}><label for="wellbeing-{{value}}">{{label}}</label></div>{{/wellbeings}}
            </div>
          </fieldset>

          <div class="field{{#errors.strain}} has-error{{/errors.strain}}">
            <label for="strain">How much strain do you feel from caring?</label>
            <p class="hint" id="strain-hint">0 means none at all, 10 means you cannot go on.</p>
            {{#errors.strain}}<p class="error" id="strain-error"><span class="visually-hidden">Error:</span> {{errors.strain}}</p>{{/errors.strain}}
            <select id="strain" name="strain" aria-describedby="strain-hint{{#errors.strain}} strain-error{{/errors.strain}}" {{#errors.strain}}aria-invalid="true"{{/errors.strain}}>
              <option value="">Choose a number</option>
              {{#strains}}<option value="{{value}}"{{#checked}} selected{{/checked}}>{{label}}</option>{{/strains}}
            </select>
          </div>

          <div class="field{{#errors.carerText}} has-error{{/errors.carerText}}">
            <label for="carerText">Anything about how you are (optional)</label>
            {{#errors.carerText}}<p class="error" id="carerText-error"><span class="visually-hidden">Error:</span> {{errors.carerText}}</p>{{/errors.carerText}}
            <textarea id="carerText" name="carerText" rows="3" {{#errors.carerText}}aria-invalid="true" aria-describedby="carerText-error"{{/errors.carerText}}>{{carerText}}</textarea>
          </div>

          <div class="field{{#errors.concerns}} has-error{{/errors.concerns}}">
            <label for="concerns">Anything worrying you (optional)</label>
            {{#errors.concerns}}<p class="error" id="concerns-error"><span class="visually-hidden">Error:</span> {{errors.concerns}}</p>{{/errors.concerns}}
            <textarea id="concerns" name="concerns" rows="3" {{#errors.concerns}}aria-invalid="true" aria-describedby="concerns-error"{{/errors.concerns}}>{{concerns}}</textarea>
          </div>

          <fieldset class="field{{#errors.urgency}} has-error{{/errors.urgency}}" id="urgency" {{#errors.urgency}}aria-describedby="urgency-error"{{/errors.urgency}}>
            <legend>How soon should someone get back to you?</legend>
            {{#errors.urgency}}<p class="error" id="urgency-error"><span class="visually-hidden">Error:</span> {{errors.urgency}}</p>{{/errors.urgency}}
            <div class="choices stacked">
            {{#urgencies}}<div class="choice"><input type="radio" id="urgency-{{value}}" name="urgency" value="{{value}}"{{#checked}} checked{{/checked}}><label for="urgency-{{value}}">{{label}}</label></div>{{/urgencies}}
            </div>
          </fieldset>

          <fieldset class="field">
            <legend>Readings from home devices (optional)</legend>
            {{#readingFields}}
            <div class="field{{#error}} has-error{{/error}}">
              <label for="{{name}}">{{label}}</label>
              {{#error}}<p class="error" id="{{name}}-error"><span class="visually-hidden">Error:</span> {{error}}</p>{{/error}}
              <input class="short" id="{{name}}" name="{{name}}" type="text" inputmode="decimal" value="{{value}}" {{#error}}aria-invalid="true" aria-describedby="{{name}}-error"{{/error}}>
            </div>
            {{/readingFields}}
          </fieldset>

          <button type="submit">Send check-in</button>
        </form>
        """

    static let checkInSent = """
        <div class="notice success" role="status">
          <h1>Check-in sent</h1>
          <p>Your check-in about {{name}} is in {{coordinatorName}}'s inbox. You sent it on {{sentAt}}.</p>
        </div>
        {{#closed}}
        <div class="urgent" role="alert">
          <h2>The team is closed now</h2>
          <p>You marked this as urgent. {{teamName}} is open {{hours}}, so nobody may read it until then.</p>
          <p>If you need help before then, contact, in this order:</p>
          <ol class="fallback">
          {{#fallback}}<li>{{.}}</li>{{/fallback}}
          </ol>
        </div>
        {{/closed}}
        {{#urgentOpen}}<p>You marked this as urgent. The team is open now and will get back to you as soon as they can. If things get worse, call 999 in an emergency.</p>{{/urgentOpen}}
        <p>When someone reads it, you will see who and when on <a href="/people/{{nhs}}/check-ins">your check-ins</a>.</p>
        <p><a href="/people/{{nhs}}">Back to the care plan</a></p>
        """

    /// The carer's own check-ins, newest first, each with who read it.
    static let checkIns = """
        <p><a href="/people/{{nhs}}">Back to the care plan</a></p>
        <h1>Your check-ins about {{name}}</h1>
        {{^hasCheckIns}}<p>You have not sent a check-in about {{name}} yet.</p>{{/hasCheckIns}}
        {{#checkIns}}
        <section class="checkin" aria-labelledby="checkin-{{message}}">
          <h2 id="checkin-{{message}}">{{sentAt}}{{#urgency}}: {{urgency}}{{/urgency}}</h2>
          {{#hasBody}}
          <dl>
            <dt>How {{name}} was</dt><dd>{{patientScore}} out of 5. {{patientText}}</dd>
            <dt>How you were</dt><dd>{{carerScore}} out of 5, strain {{strain}} out of 10.{{#carerText}} {{carerText}}{{/carerText}}</dd>
            {{#concerns}}<dt>Your worries</dt><dd>{{concerns}}</dd>{{/concerns}}
          </dl>
          {{/hasBody}}
          {{#hasReaders}}<ul class="readers">{{#readers}}<li><strong>Read by {{name}}</strong> on {{at}}{{#note}}: &ldquo;{{note}}&rdquo;{{/note}}</li>{{/readers}}</ul>{{/hasReaders}}
          {{^hasReaders}}<p class="meta">Not read yet.</p>{{/hasReaders}}
        </section>
        {{/checkIns}}
        """

    /// An on-call link: the button, then the thanks. Nothing about the patient either way.
    static let onCall = """
        <h1>{{heading}}</h1>
        {{#asking}}
        <p>Urgent work for your team is waiting and nobody has said they have it yet. If you are taking it, say so here and nobody else on call will be called.</p>
        <form method="post" action="{{action}}">
          <button type="submit">I have it</button>
        </form>
        <p>Then open it in CareRelay.</p>
        {{/asking}}
        {{#done}}
        <p>Open it in CareRelay to act on it. The message you were sent names it; from the command line: <code>{{command}}</code> shows where it stands.</p>
        {{/done}}
        """

    static let problem = """
        <h1>{{heading}}</h1>
        <p>{{message}}</p>
        <p><a href="{{link}}">{{linkText}}</a></p>
        """

    /// One live update, appended by the script into the page's live region.
    static let liveUpdate = """
        <div class="notice live-update" role="status"{{#revokes}} data-revokes="{{revokes}}"{{/revokes}}><h2>{{heading}}</h2><p>{{detail}}</p>{{#link}}<p><a href="{{link}}">{{linkText}}</a></p>{{/link}}</div>
        """

    /// `.field` also resets fieldsets (an author rule beats the browser's own fieldset border
    /// whatever its selector). `.has-error` comes after it with the same specificity, so a
    /// radio group with an error shows the red border too; a rule such as `fieldset.field`
    /// would outrank `.has-error` and take that border away. A legend is floated so that it
    /// is laid out inside its fieldset like a label in its field, within that border (a
    /// browser otherwise draws it in the fieldset's top border, outside the left one).
    static let css = """
        *,*::before,*::after{box-sizing:border-box}
        html{font-size:125%;-webkit-text-size-adjust:100%}
        body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;line-height:1.5;color:#0b0c0c;background:#fff}
        .wrap{max-width:44rem;margin:0 auto;padding:0 1rem}
        .skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#ffdd00;color:#0b0c0c;padding:.5rem;z-index:10}
        .top{background:#1d3b6e;color:#fff;padding:.5rem 0;margin-bottom:1.5rem}
        .bar{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.5rem}
        .brand{margin:0;font-weight:700}.brand a,.brand a:visited{color:#fff;text-decoration:none}
        .signout{margin:0}
        a{color:#1a4fa0}a:visited{color:#4c2c92}
        a:focus,button:focus,input:focus,select:focus,textarea:focus,.button:focus{outline:3px solid #ffdd00;outline-offset:0;box-shadow:0 0 0 6px #0b0c0c}
        h1{font-size:1.8rem;line-height:1.2;margin:1rem 0}
        h2{font-size:1.35rem;margin:1.5rem 0 .5rem}h3{font-size:1.1rem;margin:1.25rem 0 .25rem}
        .meta,.hint{color:#484949}
        .big{font-size:1.15rem;font-weight:700}
        .people li,.contacts li,.history li{margin-bottom:.75rem}
        button,.button{display:inline-block;font:inherit;font-weight:700;color:#fff;background:#00703c;border:2px solid transparent;border-radius:4px;padding:.5rem 1rem;box-shadow:0 2px 0 #002d18;cursor:pointer;text-decoration:none;min-height:44px}
        .button:visited{color:#fff}
        button.quiet{background:#fff;color:#1d3b6e;box-shadow:none;border-color:#fff;padding:.25rem .75rem}
        .field{margin:0 0 1.5rem;padding:0;border:0}
        legend,label{font-weight:700;display:block;margin-bottom:.25rem}
        legend{float:left;width:100%;padding:0}legend+*{clear:both}
        input[type=text],textarea,select{font:inherit;width:100%;padding:.4rem;border:2px solid #0b0c0c;border-radius:0;background:#fff;color:#0b0c0c;min-height:44px}
        input.short{max-width:10rem}
        .choices{display:flex;flex-wrap:wrap;gap:.5rem 1rem}.choices.stacked{display:block}
        .choice{display:flex;align-items:center;gap:.5rem;margin-bottom:.4rem}
        .choice input{width:1.5rem;height:1.5rem;margin:0;accent-color:#1d3b6e}
        .choice label{font-weight:400;margin:0}
        .has-error{border-left:5px solid #b10e1e;padding-left:.75rem}
        .has-error input,.has-error textarea,.has-error select{border-color:#b10e1e}
        .error{color:#b10e1e;font-weight:700;margin:.25rem 0}
        .error-summary{border:5px solid #b10e1e;padding:1rem;margin-bottom:1.5rem}
        .error-summary h2{margin-top:0}.error-summary a{color:#b10e1e;font-weight:700}
        .notice{border-left:6px solid #1d3b6e;background:#eef2f8;padding:.75rem 1rem;margin:1rem 0}
        .notice h2{margin-top:0;font-size:1.15rem}
        .notice.success{border-color:#00703c;background:#e8f4ee}
        .urgent{border:5px solid #b10e1e;padding:1rem;margin:1rem 0}
        .urgent h2{margin-top:0;color:#b10e1e}
        .fallback li{font-size:1.15rem;font-weight:700;margin-bottom:.5rem}
        .plan-section{border-top:1px solid #b1b4b6;padding-top:.25rem}
        .tag{font-size:.8rem;background:#1d3b6e;color:#fff;padding:.1rem .4rem;border-radius:3px;vertical-align:middle}
        .foot{margin-top:3rem;border-top:1px solid #b1b4b6;color:#484949;padding-top:1rem;padding-bottom:2rem}
        .visually-hidden{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
        main:focus{outline:none}
        .checkin dt{font-weight:700;margin-top:.5rem}.checkin dd{margin-left:0}
        @media (max-width:30rem){html{font-size:112.5%}h1{font-size:1.5rem}}
        """

    /// Live updates: appends each server-rendered (already escaped) update to the live region,
    /// and removes from the page what a revocation takes back.
    static let script = """
        (function () {
          var region = document.getElementById('updates');
          if (!region || !window.EventSource) return;
          var source = new EventSource(region.getAttribute('data-events'));
          source.addEventListener('update', function (event) {
            region.insertAdjacentHTML('beforeend', event.data);
            // A revocation names what it takes back (a message, or message/section): it
            // leaves the page at once, as it has left the bridge's store.
            var added = region.lastElementChild;
            var revokes = added && added.getAttribute('data-revokes');
            if (!revokes) return;
            revokes.split(' ').forEach(function (key) {
              document.querySelectorAll('[data-message="' + key + '"], [data-part="' + key + '"]').forEach(function (element) {
                element.remove();
              });
            });
            // A list of earlier versions left empty goes with its heading.
            document.querySelectorAll('ul.history').forEach(function (list) {
              if (!list.children.length && list.closest('section')) list.closest('section').remove();
            });
          });
        })();
        """
}
