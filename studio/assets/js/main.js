// govflow studio: one page, no build step, no external requests. Native ES
// modules, one per page or concern, loaded by the browser as they are.
// Hash routes: #/login #/flows[/ID] #/rules[/FILE] #/cases[/NO] #/board #/calendar #/users
import { route } from './shell.js';

route();
