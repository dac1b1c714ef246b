"""The supervisor and the contracts every component works with: the component
interface, the runtime a component sees, the event bus, the health picture, the exception root."""
