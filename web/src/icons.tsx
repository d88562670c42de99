/** Player icons as inline SVG: symbol glyphs (⏮ ⏸ ⏭) are missing from many system fonts. */
const box = { width: 16, height: 16, viewBox: "0 0 16 16", "aria-hidden": true } as const;

export const PlayIcon = () => (
  <svg {...box}>
    <path fill="currentColor" d="M4 2.5v11l9-5.5z" />
  </svg>
);
export const PauseIcon = () => (
  <svg {...box}>
    <path fill="currentColor" d="M3.5 2.5h3v11h-3zm6 0h3v11h-3z" />
  </svg>
);
export const PreviousIcon = () => (
  <svg {...box}>
    <path fill="currentColor" d="M3 2.5h2v11H3zm2.5 5.5 7.5 5.5v-11z" />
  </svg>
);
export const NextIcon = () => (
  <svg {...box}>
    <path fill="currentColor" d="M11 2.5h2v11h-2zm-.5 5.5L3 13.5v-11z" />
  </svg>
);
export const HeartIcon = () => (
  <svg {...box}>
    <path
      fill="none"
      stroke="currentColor"
      stroke-width="1.5"
      d="M8 13.5s-5.5-3.3-5.5-7.2A2.8 2.8 0 0 1 8 4.6a2.8 2.8 0 0 1 5.5 1.7c0 3.9-5.5 7.2-5.5 7.2z"
    />
  </svg>
);
